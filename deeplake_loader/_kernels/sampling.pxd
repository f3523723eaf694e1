from libc.stdint cimport int64_t

cdef int alias_build(const double* w, int64_t n, double* prob, int64_t* alias, int64_t* work) noexcept nogil
