"""The collective operations data-parallel training needs, over an MPI communicator, in a fixed order.

MPI's own ``Allreduce`` adds the ranks' buffers in an order its algorithm chooses (by message size, the
number of processes, the network), so its float sums can differ from run to run and from one MPI to
another. ``allreduce_sum`` fixes the order: each rank owns one segment of the buffer, receives every
rank's piece of it (``Alltoall``), adds them in rank order, and the summed segments are gathered on every
rank (``Allgather``). That is a reduce-scatter and an allgather, the traffic of a ring allreduce,
2 (P - 1) / P times the buffer per rank, and the sum is the same bits on every rank and every run
(Horovod and NCCL reduce in an order of their own; this is the deterministic variant).

Every call runs under a watchdog: a collective that has not finished after ``timeout`` seconds (a rank
died, hangs, or took another code path) aborts the whole job with a message naming the operation, instead
of waiting forever. mpi4py releases the GIL while it waits, so the watchdog thread can run.
"""
import sys
import threading
import time

import numpy as np


class Collectives:
    """Collectives over ``comm`` (an mpi4py communicator) with a ``timeout`` in seconds (None: none)."""

    def __init__(self, comm, timeout=None):
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.timeout = timeout
        self._pending = None  # (operation, deadline) of the collective in progress
        self._lock = threading.Lock()
        self._watchdog = None
        self._buffers = {}

    # ------------------------------------------------------------------ watchdog
    def _watch(self):
        while True:
            time.sleep(0.2 if self.timeout is None else min(1.0, max(0.05, self.timeout / 10)))
            with self._lock:
                pending = self._pending
            if pending is not None and time.monotonic() > pending[1]:
                sys.stderr.write(
                    f"fastnn.distribution: rank {self.rank} waited more than {self.timeout:g} s in {pending[0]}; "
                    "another rank died, hangs or took another path (ranks must run the same fit/evaluate/"
                    "predict calls). Aborting the job. Raise DataParallel(timeout=...) for slow starts.\n")
                sys.stderr.flush()
                try:
                    self.comm.Abort(3)
                finally:  # (Abort does not return; if it did, leave anyway)
                    import os
                    os._exit(3)

    def _run(self, operation, call, *args):
        if self.timeout is None:
            return call(*args)
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name="fastnn-mpi-watchdog", daemon=True)
            self._watchdog.start()
        with self._lock:
            self._pending = (operation, time.monotonic() + self.timeout)
        try:
            return call(*args)
        finally:
            with self._lock:
                self._pending = None

    # ------------------------------------------------------------------ operations
    def allgather(self, value, operation="allgather"):
        """Every rank's (picklable) ``value``, in rank order, on every rank."""
        return self._run(operation, self.comm.allgather, value)

    def bcast(self, value, operation="bcast"):
        """Rank 0's ``value`` on every rank."""
        return self._run(operation, self.comm.bcast, value, 0)

    def bcast_array(self, array, operation="bcast"):
        """Rank 0's contents of the C-contiguous ``array`` written into it on every rank (in place)."""
        self._run(operation, self.comm.Bcast, array, 0)

    def sum_rows(self, values, operation="allgather"):
        """The float64 vector ``values`` summed over the ranks in rank order (the same bits everywhere)."""
        values = np.ascontiguousarray(values, dtype=np.float64)
        gathered = np.empty((self.size, values.shape[0]), np.float64)
        self._run(operation, self.comm.Allgather, values, gathered)
        total = gathered[0].copy()
        for q in range(1, self.size):
            total += gathered[q]
        return total

    def allreduce_sum(self, send, out, operation="gradient allreduce"):
        """``out`` (N,) = the sum over ranks of each rank's ``send`` (N,), added in rank order.

        ``send`` and ``out`` may be the same array. Each rank adds the P pieces of its segment,
        ``seg = ceil(N / P)`` elements, in rank order; the summed segments are then gathered."""
        n, p = send.shape[0], self.size
        seg = -(-n // p)
        padded, received, summed, gathered = self._scratch(seg, send.dtype)
        padded[:n] = send
        self._run(operation, self.comm.Alltoall, padded, received)
        pieces = received.reshape(p, seg)
        np.copyto(summed, pieces[0])
        for q in range(1, p):
            summed += pieces[q]
        self._run(operation, self.comm.Allgather, summed, gathered)
        out[:] = gathered[:n]
        return out

    def _scratch(self, seg, dtype):
        key = (seg, np.dtype(dtype))
        kept = self._buffers.get(key)
        if kept is None:
            p = self.size
            kept = (np.zeros(p * seg, dtype), np.empty(p * seg, dtype), np.empty(seg, dtype),
                    np.empty(p * seg, dtype))
            self._buffers = {key: kept}  # one size at a time: a model's gradient buffer
        return kept
