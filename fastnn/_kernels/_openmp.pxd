# OpenMP shim and thread-count plumbing shared by every kernel module.
#
# csrc/fastnn_kernels.h stubs the OpenMP calls when the extension was built
# without OpenMP (FASTNN_NO_OPENMP=1 or a failed probe), so the same Cython
# source builds both ways; prange/parallel then run on one thread.

cdef extern from "fastnn_kernels.h" nogil:
    int FASTNN_HAVE_OPENMP
    void fastnn_barrier()
    int fastnn_omp_max_threads()
    int fastnn_team_size()
    int fastnn_thread_num()

# Below this many "element operations" a kernel runs on one thread: starting an
# OpenMP team costs about 1-3 us here, more than the work (sklearn
# utils/_openmp_helpers `_use_threads_for_workload` does the same).
cdef enum:
    SERIAL_WORK_THRESHOLD = 32768
# A GEMM below this many multiply-adds (B * I * O) stays on one thread
# (OpenBLAS uses the same cut-off, 4 * 65536, for its own threads).
cdef enum:
    GEMM_WORK_THRESHOLD = 262144

cdef int effective_n_threads(object n_threads) except -1
cdef int threads_for_work(int n_threads, Py_ssize_t work) noexcept nogil

# Optional control of the BLAS thread pool (scipy's OpenBLAS): function
# pointers resolved once by fastnn._threads; NULL when unavailable.
ctypedef void (*blas_set_threads_t)(int) noexcept nogil
ctypedef int (*blas_get_threads_t)() noexcept nogil
cdef int blas_threads_begin(int n) noexcept nogil
cdef void blas_threads_end(int previous) noexcept nogil
