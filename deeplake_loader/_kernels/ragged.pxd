from libc.stdint cimport int64_t, uint8_t

cdef int scatter_rows_c(const uint8_t* src, int64_t src_len, const int64_t* starts, const int64_t* nbytes,
                        uint8_t* dst, int64_t dst_len, const int64_t* dst_starts, int64_t n) noexcept nogil
