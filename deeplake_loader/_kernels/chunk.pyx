# cython: language_level=3
"""Bounds-checked parsing of Deep Lake 3 chunk headers (spec section 4).

Layout: 1 byte V, V bytes version, int32 S_rows, int32 S_cols, S_rows*S_cols uint32 shape
table, uint32 B_rows, B_rows*3 uint32 byte-position table, then DATA. All little-endian.
"""
import numpy as np
cimport numpy as cnp
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

cnp.import_array()

_MESSAGES = {
    CHUNK_TRUNCATED: "chunk header is truncated: its tables run past the end of the chunk",
    CHUNK_BAD_TABLE: "chunk header has a negative or impossible table size",
}


cdef inline uint32_t _le32(const uint8_t* p) noexcept nogil:
    return <uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24)


cdef int parse_chunk_header(const uint8_t* buf, int64_t n, ChunkHeader* out) noexcept nogil:
    cdef int64_t o, rows, cols
    if n < 1:
        return CHUNK_TRUNCATED
    out.version_len = buf[0]
    o = 1 + out.version_len
    if o + 8 > n:
        return CHUNK_TRUNCATED
    rows = <int32_t>_le32(buf + o)
    cols = <int32_t>_le32(buf + o + 4)
    o += 8
    if rows < 0 or cols < 0 or cols > 64:
        return CHUNK_BAD_TABLE
    if rows == 0:
        cols = 0                  # spec 4: S_cols is meaningless when S_rows == 0
    if rows * cols * 4 > n - o:
        return CHUNK_TRUNCATED
    out.shape_rows = rows
    out.shape_cols = cols
    out.shape_offset = o
    o += rows * cols * 4
    if o + 4 > n:
        return CHUNK_TRUNCATED
    rows = _le32(buf + o)
    o += 4
    if rows * 12 > n - o:
        return CHUNK_TRUNCATED
    out.bpos_rows = rows
    out.bpos_offset = o
    out.data_offset = o + rows * 12
    return CHUNK_OK


def parse_header(const uint8_t[::1] buf not None):
    """Parse a chunk's header.

    Returns ``(version, shapes, byte_positions, data_offset)``: ``shapes`` is a uint32 array
    (S_rows, S_cols), ``byte_positions`` a uint32 array (B_rows, 3), ``data_offset`` the byte
    offset of DATA. Raises ``ValueError`` with the reason when the header is corrupt.
    """
    cdef ChunkHeader h
    cdef int status
    cdef int64_t n = buf.shape[0]
    cdef const uint8_t* p = &buf[0] if n > 0 else NULL
    with nogil:
        status = parse_chunk_header(p, n, &h) if n > 0 else CHUNK_TRUNCATED
    if status != CHUNK_OK:
        raise ValueError(_MESSAGES[status])
    version = bytes(buf[1:1 + h.version_len]).decode("ascii", "replace")
    shapes = np.empty((h.shape_rows, h.shape_cols), dtype="<u4")
    bpos = np.empty((h.bpos_rows, 3), dtype="<u4")
    cdef cnp.ndarray[cnp.uint32_t, ndim=2] s = shapes
    cdef cnp.ndarray[cnp.uint32_t, ndim=2] b = bpos
    with nogil:
        if h.shape_rows * h.shape_cols > 0:
            memcpy(<void*>s.data, p + h.shape_offset, h.shape_rows * h.shape_cols * 4)
        if h.bpos_rows > 0:
            memcpy(<void*>b.data, p + h.bpos_offset, h.bpos_rows * 12)
    return version, shapes, bpos, h.data_offset


def slice_bytes(const uint8_t[::1] buf not None, const int64_t[:, ::1] ranges not None):
    """``[bytes(buf[s:e]) for s, e in ranges]``, the copies made with the GIL released: one
    allocation per sample here, then one memcpy loop. Every range is checked against ``buf``
    first (``ValueError`` naming the first bad one)."""
    cdef Py_ssize_t n = ranges.shape[0], i
    cdef int64_t size = buf.shape[0], s, e
    if ranges.shape[1] != 2:
        raise ValueError(f"ranges must be (n, 2) [start, end) pairs, got shape {(n, ranges.shape[1])}")
    for i in range(n):
        s, e = ranges[i, 0], ranges[i, 1]
        if s < 0 or e < s or e > size:
            raise ValueError(f"range {i} [{s}, {e}) is outside the {size}-byte buffer")
    out = [None] * n
    if n == 0:
        return out
    cdef char** dst = <char**>malloc(n * sizeof(char*))
    if dst == NULL:
        raise MemoryError()
    cdef const uint8_t* src = &buf[0] if size > 0 else NULL
    cdef const int64_t* r = &ranges[0, 0]  # checked above: plain pointers in the nogil loop
    try:
        for i in range(n):
            b = PyBytes_FromStringAndSize(NULL, r[2 * i + 1] - r[2 * i])
            dst[i] = PyBytes_AS_STRING(b)
            out[i] = b
        with nogil:
            for i in range(n):
                if r[2 * i + 1] > r[2 * i]:
                    memcpy(dst[i], src + r[2 * i], r[2 * i + 1] - r[2 * i])
    finally:
        free(dst)
    return out
