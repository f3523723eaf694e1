from libc.stdint cimport int64_t

from deeplake_loader._kernels.rng cimport Rng


cdef class ReservoirShuffler:
    cdef int64_t[::1] rows
    cdef int64_t[::1] sizes
    cdef int64_t count
    cdef int64_t total
    cdef readonly int64_t budget
    cdef readonly double warmup
    cdef Rng rng

    cdef void _grow(self, int64_t need)
    cdef int64_t _emit(self, int64_t[::1] out, int64_t k, int64_t n_out) noexcept nogil
