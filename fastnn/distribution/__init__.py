"""Training over several processes and machines with MPI (Keras 3's ``keras.distribution`` names).

    mpirun -n 4 python train.py

    from fastnn import distribution
    distribution.initialize()                                   # no-op outside mpirun
    distribution.set_distribution(distribution.DataParallel())  # fit's batch_size is the global batch

mpi4py is imported only when a launcher started several processes or a distribution is requested
(``pip install "fastnn[mpi]"``).
"""
from fastnn.distribution.data_parallel import DataParallel
from fastnn.distribution.distribution_lib import (Distribution, distribution, initialize, list_devices,
                                                  num_processes, process_id, set_distribution)

__all__ = ["DataParallel", "Distribution", "distribution", "initialize", "list_devices", "num_processes", "process_id",
           "set_distribution"]
