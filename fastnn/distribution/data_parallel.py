"""``DataParallel``: every process holds the whole model and trains on its share of each global batch.

Keras 3's ``keras.distribution.DataParallel(device_mesh=None, devices=None, auto_shard_dataset=True)``,
with one device per MPI process. What it means for ``fit`` (README, "Training on several machines"):
``batch_size`` is the global batch; gradients are averaged over it with one fixed-order allreduce per step
(``collectives.allreduce_sum``); losses, metrics and History are those of the global batches, the same on
every rank.
"""
import importlib.util
import numbers

from fastnn.distribution import _mpi, distribution_lib
from fastnn.distribution.collectives import Collectives
from fastnn.utils.validation import describe

DEFAULT_TIMEOUT = 600.0  # seconds a rank waits in one collective before the job is aborted


class DataParallel(distribution_lib.Distribution):
    """Data parallelism over the processes of the MPI job.

    Args:
        device_mesh, devices: accepted for Keras compatibility; fastnn uses one CPU device per process
            (``list_devices()``), so they must be None or describe all of them.
        auto_shard_dataset: True (default): every rank passes the same, whole data set and takes its
            contiguous share of each global batch. False: every rank passes its own shard; each takes
            ``batch_size / P`` rows of its shard per step (all ranks must have the same number of steps).
        timeout: seconds a rank waits in one collective operation before it aborts the job (a rank died or
            hangs); None waits forever.
    """

    def __init__(self, device_mesh=None, devices=None, auto_shard_dataset=True, timeout=DEFAULT_TIMEOUT):
        if device_mesh is not None:
            raise ValueError("DataParallel: argument `device_mesh` is not supported by fastnn (one CPU device "
                             f"per MPI process); received {describe(device_mesh)}. Leave it out.")
        if not isinstance(auto_shard_dataset, bool):
            raise ValueError("DataParallel: argument `auto_shard_dataset` must be True or False; received "
                             f"{describe(auto_shard_dataset)}.")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, numbers.Real)
                                    or not timeout > 0):
            raise ValueError("DataParallel: argument `timeout` must be a positive number of seconds or None; "
                             f"received {describe(timeout)}.")
        self._devices = None if devices is None else list(devices)
        self.auto_shard_dataset = auto_shard_dataset
        self.timeout = None if timeout is None else float(timeout)
        self.collectives = None

    def _connect(self):
        """Join MPI (when a launcher started several processes) and check ``devices``."""
        owner = "distribution.set_distribution(DataParallel())"
        if _mpi.launcher_size() > 1:
            comm = distribution_lib.communicator(owner)
            self.collectives = Collectives(comm, self.timeout)
        elif importlib.util.find_spec("mpi4py") is None:
            raise ImportError(f"{owner} needs mpi4py, which is not installed. {_mpi.INSTALL_HINT}")
        else:
            distribution_lib.initialize()  # one process: training stays local
        if self._devices is not None and sorted(self._devices) != distribution_lib.list_devices():
            raise ValueError(f"DataParallel: argument `devices` must list every process' device, "
                             f"{distribution_lib.list_devices()}; received {self._devices!r}.")

    @property
    def num_processes(self):
        return 1 if self.collectives is None else self.collectives.size

    @property
    def process_id(self):
        return 0 if self.collectives is None else self.collectives.rank

    def __repr__(self):
        return (f"<DataParallel processes={self.num_processes} auto_shard_dataset={self.auto_shard_dataset} "
                f"timeout={self.timeout}>")
