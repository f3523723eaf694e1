"""One chunk file (spec §4): header tables parsed by the native kernel, payload access without
copies, and the serialisation the writer uses."""

from __future__ import annotations

import numpy as np

from .._kernels.chunk import parse_header
from ..errors import CorruptDatasetError, DecodeError
from . import compression
from .encoders import locate, version_header


class Chunk:
    """A parsed chunk. ``data`` is the payload after chunk decompression (lz4) — for an image-canvas
    chunk ``canvas`` holds the decoded canvas instead."""

    def __init__(self, shapes, bpos, data, *, canvas=None, key=None, tensor=None):
        self.shapes, self.bpos, self.data, self.canvas = shapes, bpos, data, canvas
        self.key, self.tensor = key, tensor
        self._shape_last = shapes[:, -1].astype(np.int64) if len(shapes) else np.zeros(0, np.int64)
        self._bpos_last = bpos[:, 2].astype(np.int64) if len(bpos) else np.zeros(0, np.int64)

    @classmethod
    def from_bytes(cls, buf, *, chunk_compression=None, key=None, tensor=None):
        buf = memoryview(buf).cast("B") if not isinstance(buf, bytes) else buf
        try:
            _, shapes, bpos, offset = parse_header(buf)
        except ValueError as e:
            raise CorruptDatasetError(f"bad chunk header: {e}", tensor=tensor, key=key) from None
        if (len(shapes) and shapes.ndim != 2) or (len(shapes) and shapes.shape[1] < 1) \
                or (len(bpos) and (bpos.ndim != 2 or bpos.shape[1] != 3)):
            raise CorruptDatasetError(f"bad chunk header: shape table {shapes.shape}, byte positions {bpos.shape}",
                                      tensor=tensor, key=key)
        data = memoryview(buf)[offset:]
        canvas = None
        if chunk_compression in compression.BYTE_CODECS:
            try:
                data = memoryview(compression.lz4_decompress(data))
            except Exception as e:  # lz4 raises LZ4BlockError / ValueError
                raise CorruptDatasetError(f"lz4 chunk payload does not decompress ({e})",
                                          tensor=tensor, key=key) from None
        elif chunk_compression is not None and len(data):
            try:
                canvas = compression.pil_decode(data) if compression.sniff(data) not in compression.KERNEL_CODECS \
                    else compression.decode_images([data], compression.sniff(data),
                                                   [_canvas_shape(shapes)])[0]
            except DecodeError as e:
                raise DecodeError(f"chunk canvas is not a readable {chunk_compression} image: {e}",
                                  tensor=tensor, key=key) from None
            if canvas.ndim == 2:
                canvas = canvas[..., None]
        chunk = cls(shapes, bpos, data, canvas=canvas, key=key, tensor=tensor)
        chunk._check()
        return chunk

    def _check(self):
        if len(self.shapes) and len(self.bpos) and int(self._bpos_last[-1]) + 1 != self.num_samples:
            raise CorruptDatasetError("shape and byte-position tables disagree on the sample count",
                                      tensor=self.tensor, key=self.key)

    @property
    def num_samples(self) -> int:
        if len(self.shapes):
            return int(self._shape_last[-1]) + 1
        if len(self.bpos):
            return int(self._bpos_last[-1]) + 1
        return 0

    def shape(self, local: int) -> tuple:
        return tuple(int(x) for x in self.shapes_of([local])[0])

    def shapes_of(self, locals_) -> np.ndarray:
        rows, _ = locate(self._shape_last, locals_)
        if len(rows) and rows.max() >= len(self.shapes):
            raise CorruptDatasetError(f"sample {int(np.max(locals_))} is beyond the chunk's shape table "
                                      f"({self.num_samples} samples)", tensor=self.tensor, key=self.key)
        return self.shapes[rows, :-1]

    def byte_ranges(self, locals_) -> np.ndarray:
        """(n, 2) [start, end) of each local sample in ``data``."""
        locals_ = np.asarray(locals_, dtype=np.int64)
        if not len(self.bpos):  # a tile, or a single-sample payload
            return np.tile(np.array([0, len(self.data)], np.int64), (len(locals_), 1))
        rows, first = locate(self._bpos_last, locals_)
        if len(rows) and rows.max() >= len(self.bpos):
            raise CorruptDatasetError(f"sample {int(locals_.max())} is beyond the chunk's byte positions "
                                      f"({self.num_samples} samples)", tensor=self.tensor, key=self.key)
        nbytes = self.bpos[rows, 0].astype(np.int64)
        start = self.bpos[rows, 1].astype(np.int64) + (locals_ - first) * nbytes
        short = np.nonzero(start + nbytes > len(self.data))[0]
        if len(short):
            k = short[0]
            raise CorruptDatasetError(f"sample {int(locals_[k])} of the chunk ends at byte {int(start[k] + nbytes[k])} "
                                      f"but the chunk holds {len(self.data)} data bytes (truncated?)",
                                      tensor=self.tensor, key=self.key)
        return np.stack([start, start + nbytes], axis=1)

    def payload(self, local: int) -> memoryview:
        s, e = self.byte_ranges([local])[0]
        return self.data[s:e]

    def canvas_sample(self, local: int) -> np.ndarray:
        if self.canvas is None:  # a chunk of empty samples only
            return np.zeros(self.shape(local), np.uint8)
        shapes = self.shapes_of(range(local + 1))
        try:
            return compression.canvas_crop(self.canvas, shapes, local)
        except ValueError:
            raise CorruptDatasetError(f"sample {local} of shape {tuple(int(x) for x in shapes[local])} does not fit "
                                      f"in the chunk's {self.canvas.shape} image canvas", tensor=self.tensor,
                                      key=self.key) from None


def _canvas_shape(shapes):
    dims = shapes[:, :-1]
    nonempty = dims[np.all(dims > 0, axis=1)] if len(dims) else dims
    if not len(nonempty):
        return (0, 0, 1)
    c = int(nonempty[0][2]) if nonempty.shape[1] == 3 else 1
    return (int(nonempty[:, 0].max()), int(nonempty[:, 1].sum()), c)


def rle_rows(values: np.ndarray) -> np.ndarray:
    """Run-length rows [*value, last_index] of per-sample value rows (adjacent equal rows merged)."""
    values = np.asarray(values, dtype=np.int64).reshape(len(values), -1)
    if not len(values):
        return np.zeros((0, values.shape[1] + 1), np.uint32)
    change = np.any(values[1:] != values[:-1], axis=1)
    ends = np.concatenate([np.nonzero(change)[0], [len(values) - 1]])
    return np.concatenate([values[ends], ends[:, None]], axis=1).astype(np.uint32)


def serialize(shapes, nbytes, data: bytes, *, with_positions=True, ndim=None) -> bytes:
    """Chunk bytes for per-sample shapes (n, ndim) and payload sizes (n,). Byte positions are
    local and contiguous from 0 (spec §4)."""
    shapes = np.asarray(shapes, dtype=np.int64).reshape(len(shapes), -1)
    ndim = shapes.shape[1] if ndim is None else ndim
    srows = rle_rows(shapes)
    parts = [version_header(), np.array([len(srows), ndim + 1], "<i4").tobytes(), srows.astype("<u4").tobytes()]
    if with_positions and len(shapes):
        nbytes = np.asarray(nbytes, dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(nbytes)[:-1]])
        change = np.concatenate([[True], nbytes[1:] != nbytes[:-1]])
        first_rows = np.nonzero(change)[0]
        ends = np.concatenate([first_rows[1:] - 1, [len(nbytes) - 1]])
        brows = np.stack([nbytes[first_rows], starts[first_rows], ends], axis=1).astype("<u4")
        parts += [np.array([len(brows)], "<u4").tobytes(), brows.tobytes()]
    else:
        parts.append(np.array([0], "<u4").tobytes())
    parts.append(data)
    return b"".join(parts)
