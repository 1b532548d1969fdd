"""Uniform float32 numbers from a NumPy Generator's own stream, faster (compiled twin of _reference).

``generator_random_f32(generator, out)`` fills ``out`` exactly as ``generator.random(dtype=np.float32,
out=out)`` does and leaves the generator in the same state, for the PCG64 bit generator that
``np.random.default_rng`` uses (csrc/fastnn_pcg64.h); any other bit generator, or a build without a
128-bit integer type, takes NumPy's own draw. fit's Dropout draws its uniforms this way (Keras draws
them from the layer's generator; fastnn keeps the stream the layer-by-layer path draws).
One thread: the stream is sequential.
"""
import numpy as np

from libc.stdint cimport uint32_t, uint64_t

from fastnn._kernels._argchecks import check_random_f32  # the same checks and messages as the twin

cdef extern from "fastnn_pcg64.h" nogil:
    int FASTNN_HAVE_PCG64
    void fastnn_pcg64_fill_f32(uint64_t* state_hi, uint64_t* state_lo, uint64_t inc_hi, uint64_t inc_lo,
                               int* has_uint32, uint32_t* uinteger, float* out, Py_ssize_t n)

HAVE_PCG64 = bool(FASTNN_HAVE_PCG64)
_MASK64 = (1 << 64) - 1


def generator_random_f32(generator, out):
    """out[...] = generator.random(dtype=np.float32) numbers, in C order, advancing the generator."""
    check_random_f32(generator, out)
    bit_generator = generator.bit_generator
    if type(bit_generator) is not np.random.PCG64 or not HAVE_PCG64:
        generator.random(dtype=np.float32, out=out)
        return out
    st = bit_generator.state
    cdef uint64_t state_hi = st["state"]["state"] >> 64, state_lo = st["state"]["state"] & _MASK64
    cdef uint64_t inc_hi = st["state"]["inc"] >> 64, inc_lo = st["state"]["inc"] & _MASK64
    cdef int has_uint32 = st["has_uint32"]
    cdef uint32_t uinteger = st["uinteger"]
    cdef float[::1] flat = out.reshape(-1)
    cdef Py_ssize_t n = flat.shape[0]
    if n == 0:
        return out
    with nogil:
        fastnn_pcg64_fill_f32(&state_hi, &state_lo, inc_hi, inc_lo, &has_uint32, &uinteger, &flat[0], n)
    st["state"]["state"] = (<object>state_hi << 64) | <object>state_lo
    st["has_uint32"] = has_uint32
    st["uinteger"] = uinteger
    bit_generator.state = st
    return out
