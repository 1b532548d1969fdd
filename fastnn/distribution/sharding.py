"""Which rows of each global batch a rank trains on.

A global batch of B rows is cut into P contiguous shares, rank r taking rows
``[offset(B, P, r), offset(B, P, r) + share(B, P, r))``: ``B // P`` rows each, and one more for the first
``B % P`` ranks, so a global batch not divisible by P gives uneven shares (their gradients are weighted
by their sizes, so the average is still the mean over the global batch). The last global batch of an epoch
may be shorter than P rows; the ranks past its end then have an empty share for that step.
"""
import math

import numpy as np


def share(total, parts, index):
    """Rows of ``total`` that part ``index`` of ``parts`` takes."""
    return total // parts + (1 if index < total % parts else 0)


def offset(total, parts, index):
    """The first row of part ``index``."""
    return index * (total // parts) + min(index, total % parts)


class Layout:
    """Rows per step of every rank for one epoch of ``steps`` steps: ``full[r]`` on every step but the
    last, ``last[r]`` on the last; global batch ``B = sum(full)``."""

    def __init__(self, full, last, steps):
        self.full = [int(v) for v in full]
        self.last = [int(v) for v in last]
        self.steps = int(steps)
        self.batch_size = sum(self.full)
        self.size = len(self.full)

    @classmethod
    def auto_shard(cls, n, batch_size, size):
        """Every rank holds all ``n`` rows; the global batches are cut into shares."""
        steps = int(math.ceil(n / batch_size))
        tail = n - (steps - 1) * batch_size
        return cls([share(batch_size, size, r) for r in range(size)], [share(tail, size, r) for r in range(size)],
                   steps)

    @classmethod
    def pre_sharded(cls, rows, batch_size):
        """Rank r holds ``rows[r]`` rows of its own and takes ``share(batch_size)`` of them per step; every
        rank must then need the same number of steps."""
        size = len(rows)
        full = [share(batch_size, size, r) for r in range(size)]
        steps = [int(math.ceil(n / f)) for n, f in zip(rows, full)]
        if len(set(steps)) != 1:
            detail = ", ".join(f"rank {r}: {n} rows / {f} per step = {s} steps"
                               for r, (n, f, s) in enumerate(zip(rows, full, steps)))
            raise ValueError(
                "fit with DataParallel(auto_shard_dataset=False): every rank must need the same number of steps "
                f"per epoch at batch_size={batch_size} (each rank takes its share of the global batch); received "
                f"{detail}. Give every rank about the same number of rows (e.g. split the data with "
                "numpy.array_split), or let fastnn shard one data set: DataParallel(auto_shard_dataset=True).")
        return cls(full, [n - (steps[0] - 1) * f for n, f in zip(rows, full)], steps[0])

    def rows(self, rank, step):
        return self.last[rank] if step == self.steps - 1 else self.full[rank]

    def global_rows(self, step):
        return sum(self.last) if step == self.steps - 1 else self.batch_size

    def first_row(self, rank, step):
        """The rank's first row within the global batch of ``step``."""
        counts = self.last if step == self.steps - 1 else self.full
        return sum(counts[:rank])

    def engine_batch(self, rank):
        """The most rows a step gives ``rank`` (its engine's batch size; 1 when a step gives it none)."""
        return max(self.full[rank], self.last[rank], 1)

    def positions(self, rank, first, steps):
        """This rank's rows of the global steps ``[first, first + steps)``, as positions among those steps'
        rows taken in order (steps of B rows, the last one shorter)."""
        parts, base = [], 0
        for t in range(first, first + steps):
            start = base + self.first_row(rank, t)
            parts.append(np.arange(start, start + self.rows(rank, t), dtype=np.intp))
            base += self.global_rows(t)
        return np.concatenate(parts) if parts else np.zeros(0, np.intp)

    def local_rows(self, rank, first, steps):
        """For pre-sharded data: this rank's own rows of those steps, as positions in its epoch order
        (step t starts at t * full[rank])."""
        f = self.full[rank]
        parts = [np.arange(t * f, t * f + self.rows(rank, t), dtype=np.intp) for t in range(first, first + steps)]
        return np.concatenate(parts) if parts else np.zeros(0, np.intp)
