# Chunk header parsing (format spec section 4). The bytes are untrusted: every read is
# bounds-checked and failure is a status code, never an out-of-bounds access.
from libc.stdint cimport uint8_t, uint32_t, int32_t, int64_t

cdef enum ChunkStatus:
    CHUNK_OK = 0
    CHUNK_TRUNCATED = 1        # header says more bytes than the buffer holds
    CHUNK_BAD_TABLE = 2        # negative or absurd row/column counts

cdef struct ChunkHeader:
    int64_t version_len
    int64_t shape_rows
    int64_t shape_cols
    int64_t shape_offset        # byte offset of the shape table
    int64_t bpos_rows
    int64_t bpos_offset         # byte offset of the byte-position table
    int64_t data_offset         # byte offset of DATA

cdef int parse_chunk_header(const uint8_t* buf, int64_t n, ChunkHeader* out) noexcept nogil
