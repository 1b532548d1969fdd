"""Where MPI comes from: mpi4py, imported only when a distribution is asked for.

``import fastnn`` never imports mpi4py: importing ``mpi4py.MPI`` initializes MPI, which outside a launcher
starts a singleton job (slow, and it may print warnings). A process knows it was started by a launcher
(mpirun, mpiexec, srun) from the variables the launcher sets; only then, or when a distribution is
requested, is MPI initialized.
"""
import os

# Variables a launcher sets in each process it starts: Open MPI, MPICH/Intel MPI (Hydra's PMI), PMIx
# (Open MPI 5, srun --mpi=pmix).
_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")
_RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK")

INSTALL_HINT = ('Install it with `pip install "fastnn[mpi]"` (mpi4py and an Open MPI runtime from the package '
                'index; `pip install ".[mpi]"` in a source checkout), or `pip install mpi4py` against a system MPI.')


def launcher_size():
    """The number of processes the launcher started (1 when none did), from its environment variables."""
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    if any(os.environ.get(name) for name in _RANK_VARIABLES):
        return 2  # a rank without a size: some launcher started several processes
    return 1


def world(owner):
    """mpi4py's ``MPI`` module and ``COMM_WORLD``; a clear error naming the fix when mpi4py is missing."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"{owner} needs mpi4py, which is not installed. {INSTALL_HINT}") from exc
    return MPI, MPI.COMM_WORLD
