"""Processes and the current distribution: Keras 3's ``keras.distribution`` functions over MPI.

``initialize()`` reads the rank and the number of processes from MPI when a launcher (``mpirun``,
``mpiexec``, ``srun``) started the process, and is a no-op with one process otherwise.
``set_distribution(DataParallel())`` makes ``fit``, ``evaluate`` and ``predict`` data-parallel over those
processes. ``process_id()`` and ``num_processes()`` are fastnn's names for Keras' backend helpers.
"""
import contextlib
import sys

from fastnn.distribution import _mpi
from fastnn.utils.validation import describe

_state = {"initialized": False, "comm": None, "rank": 0, "size": 1, "distribution": None}


def initialize(job_addresses=None, num_processes=None, process_id=None):
    """Join the MPI job this process was started in (Keras' ``keras.distribution.initialize``).

    Outside a launcher it is a no-op: one process, rank 0 (mpi4py is not even imported). Under a launcher
    it needs mpi4py; ``job_addresses`` is accepted for Keras compatibility and not used (MPI knows its
    processes); ``num_processes`` / ``process_id``, if given, must agree with MPI's.
    """
    if job_addresses is not None and not isinstance(job_addresses, (str, list, tuple)):
        raise ValueError("initialize: argument `job_addresses` must be a string or a list of addresses; "
                         f"received {describe(job_addresses)}.")
    if not _state["initialized"]:
        if _mpi.launcher_size() > 1:
            _join("distribution.initialize()")
        _state["initialized"] = True
    for name, given, actual in (("num_processes", num_processes, _state["size"]),
                                ("process_id", process_id, _state["rank"])):
        if given is not None and given != actual:
            raise ValueError(f"initialize: argument `{name}` is {given!r}, but MPI started this process with "
                             f"{name}={actual}. Leave it out: fastnn reads it from MPI.")


def _join(owner):
    """Initialize MPI and remember COMM_WORLD; with several processes, an uncaught exception on any rank
    aborts the job (otherwise the other ranks would wait in their next collective, and this one in
    MPI_Finalize, forever)."""
    mpi, comm = _mpi.world(owner)
    _state.update(comm=comm, rank=comm.Get_rank(), size=comm.Get_size())
    if _state["size"] > 1 and not getattr(sys.excepthook, "_fastnn_abort", False):
        previous = sys.excepthook

        def abort_on_exception(kind, value, traceback):
            previous(kind, value, traceback)
            sys.stderr.flush()
            comm.Abort(1)
        abort_on_exception._fastnn_abort = True
        sys.excepthook = abort_on_exception
    return mpi


def communicator(owner):
    """COMM_WORLD (MPI initialized on first use)."""
    if _state["comm"] is None:
        _join(owner)
        _state["initialized"] = True
    return _state["comm"]


def process_id():
    """This process' rank, 0 .. num_processes() - 1 (0 outside a launcher)."""
    if not _state["initialized"]:
        initialize()
    return _state["rank"]


def num_processes():
    """The number of processes of the job (1 outside a launcher)."""
    if not _state["initialized"]:
        initialize()
    return _state["size"]


def list_devices(device_type=None):
    """The devices of the job, one CPU per process: ``['cpu:0', ..., 'cpu:P-1']`` (Keras' names)."""
    if device_type is not None and str(device_type).lower() != "cpu":
        raise ValueError(f"list_devices: fastnn runs on CPUs only; received device_type={device_type!r}. "
                         "Pass 'cpu' or None.")
    return [f"cpu:{i}" for i in range(num_processes())]


class Distribution:
    """The base class of distributions (Keras' ``keras.distribution.Distribution``); fastnn has one,
    ``DataParallel``."""

    collectives = None

    def _connect(self):
        raise NotImplementedError

    def scope(self):
        """A ``with`` block in which this is the distribution."""
        return scope(self)


def set_distribution(value):
    """Make ``value`` (a ``DataParallel``, or None to train in this process alone) the distribution
    ``fit``/``evaluate``/``predict`` use."""
    if value is not None and not isinstance(value, Distribution):
        raise ValueError("set_distribution: argument `value` must be a fastnn.distribution.DataParallel or "
                         f"None; received {describe(value)}. fastnn has no model-parallel distribution.")
    if value is not None:
        value._connect()
    _state["distribution"] = value


def distribution():
    """The current distribution (None: none was set)."""
    return _state["distribution"]


@contextlib.contextmanager
def scope(value):
    """Use ``value`` as the distribution inside a ``with`` block (``DataParallel.scope()``)."""
    previous = _state["distribution"]
    set_distribution(value)
    try:
        yield value
    finally:
        _state["distribution"] = previous


def active_data_parallel():
    """The current DataParallel when it spans more than one process; None when training is local."""
    value = _state["distribution"]
    if value is None or value.collectives is None or value.collectives.size < 2:
        return None
    return value


def writes_files():
    """False on the ranks other than 0 of a data-parallel job: ``model.save`` / ``save_weights`` (and so
    ModelCheckpoint) write from rank 0 only, since every rank holds the same model and would otherwise write
    the same file at the same time."""
    return active_data_parallel() is None or _state["rank"] == 0
