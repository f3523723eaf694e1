"""Loops over ragged columns (rows of different lengths) for the query engine.

A ragged column is kept as CSR: ``values`` (all rows' elements, first axis concatenated) and
``offsets`` (N+1, row r is values[offsets[r]:offsets[r+1]]). These kernels build it from chunk
payloads and reduce it per row, with the GIL released.
"""

import numpy as np
cimport numpy as cnp
from libc.math cimport NAN
from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memcpy

cnp.import_array()

cdef enum:
    SUM = 0
    MIN = 1
    MAX = 2
    MEAN = 3
    ANY = 0
    ALL = 1
    ALL_STRICT = 2


cdef int scatter_rows_c(const uint8_t* src, int64_t src_len, const int64_t* starts, const int64_t* nbytes,
                        uint8_t* dst, int64_t dst_len, const int64_t* dst_starts, int64_t n) noexcept nogil:
    """Copy n byte ranges of src to their places in dst; -1 - k if range k is out of bounds."""
    cdef int64_t k
    for k in range(n):
        if starts[k] < 0 or nbytes[k] < 0 or starts[k] + nbytes[k] > src_len or dst_starts[k] < 0 \
                or dst_starts[k] + nbytes[k] > dst_len:
            return <int>(-1 - k)
        if nbytes[k]:
            memcpy(dst + dst_starts[k], src + starts[k], nbytes[k])
    return 0


def scatter_rows(const uint8_t[::1] src, const int64_t[::1] starts, const int64_t[::1] nbytes,
                 uint8_t[::1] dst, const int64_t[::1] dst_starts):
    """dst[dst_starts[k]:+nbytes[k]] = src[starts[k]:+nbytes[k]] for every k. ValueError naming the
    first range that falls outside src or dst."""
    cdef int64_t n = starts.shape[0]
    if nbytes.shape[0] != n or dst_starts.shape[0] != n:
        raise ValueError("starts, nbytes and dst_starts must have the same length")
    if n == 0:
        return
    cdef const uint8_t* s = &src[0] if src.shape[0] else NULL
    cdef uint8_t* d = &dst[0] if dst.shape[0] else NULL
    cdef int rc
    with nogil:
        rc = scatter_rows_c(s, src.shape[0], &starts[0], &nbytes[0], d, dst.shape[0], &dst_starts[0], n)
    if rc != 0:
        k = -1 - rc
        raise ValueError(f"range {k} (start {starts[k]}, {nbytes[k]} bytes) is outside the source "
                         f"({src.shape[0]} bytes) or the destination ({dst.shape[0]} bytes)")


def segment_reduce(const double[::1] values, const int64_t[::1] offsets, int op):
    """Per-row sum (0) / min (1) / max (2) / mean (3) of CSR values; empty rows give 0 for sum and
    NaN otherwise."""
    cdef int64_t n = offsets.shape[0] - 1, r, i, a, b
    if n < 0 or (n >= 0 and offsets[n] > values.shape[0]):
        raise ValueError("offsets do not fit the values")
    out = np.empty(max(n, 0), np.float64)
    cdef double[::1] o = out
    cdef double acc
    with nogil:
        for r in range(n):
            a = offsets[r]
            b = offsets[r + 1]
            if b <= a:
                o[r] = 0.0 if op == SUM else NAN
                continue
            acc = values[a]
            for i in range(a + 1, b):
                if op == SUM or op == MEAN:
                    acc = acc + values[i]
                elif op == MIN:
                    if values[i] < acc:
                        acc = values[i]
                elif values[i] > acc:
                    acc = values[i]
            o[r] = acc / (b - a) if op == MEAN else acc
    return out


def segment_bool(const uint8_t[::1] values, const int64_t[::1] offsets, int op):
    """Per-row any (0) / all (1, true for empty rows) / all_strict (2, false for empty rows)."""
    cdef int64_t n = offsets.shape[0] - 1, r, i, a, b
    if n < 0 or offsets[n] > values.shape[0]:
        raise ValueError("offsets do not fit the values")
    out = np.empty(n, np.bool_)
    cdef uint8_t[::1] o = out.view(np.uint8)
    cdef uint8_t v
    with nogil:
        for r in range(n):
            a = offsets[r]
            b = offsets[r + 1]
            if op == ANY:
                v = 0
                for i in range(a, b):
                    if values[i]:
                        v = 1
                        break
            else:
                v = 1 if (b > a or op == ALL) else 0
                for i in range(a, b):
                    if not values[i]:
                        v = 0
                        break
            o[r] = v
    return out
