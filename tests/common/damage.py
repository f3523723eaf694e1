"""Damage a dataset on disk, sample by sample: replace the stored payload (and optionally the
shape-table entry) of chosen rows in their chunk files, leaving every other byte of the chunk's
samples as written. For tests of what the reader and the loader do with bad samples.

Also: bytes that are bad in a known way (``not_an_image``, ``lying_header``, ``libjpeg_error``,
``libpng_error``), each with the text the codec library reports for it."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np


def replace_samples(ds_path, tensor: str, new: dict) -> None:
    """new: {row: payload bytes, or (payload bytes, shape tuple)} for rows of ``tensor`` (not tiled)."""
    import deeplake_loader as dl
    from deeplake_loader.format.chunk import Chunk, serialize

    r = dl.load(str(ds_path), read_only=True)._reader(tensor)
    rows = np.array(sorted(new), np.int64)
    for name, pos, local in r.chunk_plan(rows):
        assert name is not None, "tiled samples cannot be replaced"
        key = r.vs.chunk_key(r.key, name)
        path = Path(ds_path) / key
        chunk = Chunk.from_bytes(path.read_bytes())
        n = chunk.num_samples
        ranges = chunk.byte_ranges(np.arange(n))
        payloads = [bytes(chunk.data[s:e]) for s, e in ranges]
        shapes = [list(chunk.shape(i)) for i in range(n)]
        for p, loc in zip(pos, local):
            value = new[int(rows[p])]
            payload, shape = value if isinstance(value, tuple) else (value, None)
            payloads[int(loc)] = bytes(payload)
            if shape is not None:
                shapes[int(loc)] = list(shape)
        path.write_bytes(serialize(np.array(shapes, np.int64), [len(b) for b in payloads], b"".join(payloads)))


def not_an_image(n: int) -> bytes:
    """n bytes that no codec recognises (no JPEG/PNG signature)."""
    return bytes((k * 7 + 3) % 251 for k in range(n))


def lying_header(buf: bytes, height: int, width: int) -> bytes:
    """A JPEG or PNG whose header claims height x width (the rest of the file unchanged)."""
    b = bytearray(buf)
    if b[:3] == b"\xff\xd8\xff":
        i = _sof(b)
        b[i + 5:i + 9] = struct.pack(">HH", height, width)
    else:
        b[16:24] = struct.pack(">II", width, height)
        b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])) & 0xFFFFFFFF)
    return bytes(b)


def libjpeg_error(buf: bytes):
    """(bytes, libjpeg's message): the SOF says 12-bit samples, which an 8-bit libjpeg refuses
    while reading the header (so every decode path, full or cropped, meets it)."""
    b = bytearray(buf)
    b[_sof(b) + 4] = 12
    return bytes(b), "Unsupported JPEG data precision 12"


def libjpeg_warning(buf: bytes):
    """(bytes, libjpeg's message): junk before the EOI marker, a warning libjpeg reports at the
    end of a full decode (a strict decode fails on it)."""
    assert buf[-2:] == b"\xff\xd9"
    return buf[:-2] + bytes(109) + b"\xff\xd9", "extraneous bytes before marker 0xd9"


def libpng_error(buf: bytes):
    """(bytes, libpng's message): the IHDR chunk's CRC is wrong."""
    b = bytearray(buf)
    b[29] ^= 0xFF
    return bytes(b), "IHDR: CRC error"


def _sof(b) -> int:
    for marker in (b"\xff\xc0", b"\xff\xc1", b"\xff\xc2"):
        i = bytes(b).find(marker)
        if i >= 0:
            return i
    raise ValueError("no SOF marker")
