"""Polygon samples (``htype="polygon"``, spec §10.3): a sample is a list of polygons, each an
(points, ndim) array. Stored as ``uint16 LE count, count x uint16 LE point counts, then every
point's coordinates in the tensor's dtype``, C order; an empty sample has no bytes. The shape in
the chunk's table is (polygons, most points, ndim)."""

from __future__ import annotations

import numpy as np

from ..errors import CorruptDatasetError


def decode(raw, dtype, ndim: int) -> list:
    """The polygons of one payload (a list of (points, ndim) arrays)."""
    raw = bytes(raw)
    if not raw:
        return []
    if len(raw) < 2:
        raise CorruptDatasetError(f"polygon payload of {len(raw)} byte(s) has no polygon count")
    n = int.from_bytes(raw[:2], "little")
    head = 2 + 2 * n
    dtype = np.dtype(dtype)
    if len(raw) < head or ndim <= 0:
        raise CorruptDatasetError(f"polygon payload of {len(raw)} bytes cannot hold {n} polygons of {ndim} dims")
    lengths = np.frombuffer(raw, "<u2", n, 2).astype(np.int64)
    per_point = dtype.itemsize * ndim
    if len(raw) - head != int(lengths.sum()) * per_point:
        raise CorruptDatasetError(f"polygon payload holds {len(raw) - head} bytes of points; its {n} polygons of "
                                  f"{lengths.tolist()[:8]} points x {ndim} dims of {dtype} need "
                                  f"{int(lengths.sum()) * per_point}")
    points = np.frombuffer(raw, dtype, offset=head).reshape(-1, ndim)
    out, k = [], 0
    for m in lengths.tolist():
        out.append(points[k:k + m].copy())
        k += m
    return out


def encode(sample, dtype) -> tuple:
    """(payload bytes, stored shape) of a list of polygons (None or [] = an empty sample)."""
    dtype = np.dtype(dtype)
    polys = [] if sample is None else [np.asarray(p, dtype=dtype) for p in sample]
    if not polys:
        return b"", None
    ndim = polys[0].shape[-1] if polys[0].ndim == 2 else 0
    for p in polys:
        if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] != ndim:
            raise ValueError(f"a polygon must be a non-empty (points, {ndim or 'ndim'}) array; got shape {p.shape}")
    if len(polys) >= 65536 or max(len(p) for p in polys) >= 65536 or ndim >= 256:
        raise ValueError("at most 65535 polygons of at most 65535 points, of fewer than 256 dims, fit a sample")
    head = len(polys).to_bytes(2, "little") + np.array([len(p) for p in polys], "<u2").tobytes()
    body = b"".join(np.ascontiguousarray(p).tobytes() for p in polys)
    return head + body, (len(polys), max(len(p) for p in polys), ndim)
