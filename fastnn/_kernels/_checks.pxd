# Input checks shared by the kernel wrappers (implemented in _checks.pyx).
#
# Every wrapper validates with these BEFORE releasing the GIL, so a bad call
# raises a ValueError that names the kernel and the argument, says what was
# expected and shows what was received (Keras' wording; the message
# helpers live in fastnn/utils/validation.py). Non-contiguous inputs are
# copied; outputs and in-place buffers must already be C-contiguous.

cdef object float_array(str owner, str name, object x, int ndim, object dtype=*)
cdef object same_shape(str owner, str name, object x, tuple shape, object dtype)
cdef object finite_labels(str owner, str name, object y)
cdef object class_ids(str owner, str name, object y, Py_ssize_t B, Py_ssize_t K)
cdef object out_array(str owner, str name, object out, tuple shape, object dtype)
cdef object inplace_array(str owner, str name, object a, Py_ssize_t n, object dtype)
cdef double real_number(str owner, str name, object value) except? -1
