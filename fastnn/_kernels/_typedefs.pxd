# Shared ctypedefs for fastnn's Cython kernels.
#
# floating   the two dtypes every kernel is compiled for (float32, float64);
#            fused, so each loop is written once, not copied per dtype.
# intp_t     index type of row ids / class ids (numpy.intp == Py_ssize_t).
from libc.stdint cimport uint64_t

ctypedef fused floating:
    float
    double

ctypedef Py_ssize_t intp_t
