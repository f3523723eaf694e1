"""The libdeflate fast path of the PNG decoder (8-bit, non-interlaced, no palette/tRNS): exact
pixels for every filter type and layout, and libpng taking over (with its own errors) for files
the fast path does not accept."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from deeplake_loader._kernels import decode as K
from deeplake_loader.errors import DecodeError

COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def filtered(arr: np.ndarray, filters) -> bytes:
    """Scanlines of arr (H, W, C) uint8 filtered with filters[y] (PNG spec, section 9)."""
    h, w, c = arr.shape
    rows = arr.reshape(h, w * c).astype(np.int64)
    out = bytearray()
    for y in range(h):
        f = filters[y % len(filters)]
        cur, up = rows[y], rows[y - 1] if y else np.zeros(w * c, np.int64)
        left = np.concatenate([np.zeros(c, np.int64), cur[:-c]])
        upleft = np.concatenate([np.zeros(c, np.int64), up[:-c]])
        if f == 0:
            pred = np.zeros_like(cur)
        elif f == 1:
            pred = left
        elif f == 2:
            pred = up
        elif f == 3:
            pred = (left + up) // 2
        else:
            pred = np.array([paeth(a, b, cc) for a, b, cc in zip(left, up, upleft)])
        out.append(f)
        out += ((cur - pred) % 256).astype(np.uint8).tobytes()
    return bytes(out)


def make_png(arr, filters=(0,), idat_pieces=1, extra=b"", stream=None):
    h, w, c = arr.shape
    ihdr = struct.pack(">IIBBBBB", w, h, 8, COLOR_TYPE[c], 0, 0, 0)
    z = zlib.compress(filtered(arr, filters)) if stream is None else stream
    cut = np.linspace(0, len(z), idat_pieces + 1).astype(int)
    idats = b"".join(chunk(b"IDAT", z[a:b]) for a, b in zip(cut[:-1], cut[1:]))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + idats + chunk(b"IEND", b"")


def decode(buf, c):
    info = K.image_info(buf)
    out = np.empty((1, info[1], info[2], c), np.uint8)
    K.decode_batch([buf], out)
    return out[0]


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("filters", [(0,), (1,), (2,), (3,), (4,), (0, 1, 2, 3, 4)])
def test_every_filter_and_layout(channels, filters):
    rng = np.random.default_rng(channels * 10 + len(filters))
    for h, w in [(1, 1), (7, 13), (32, 5)]:
        arr = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
        for pieces in (1, 3):
            buf = make_png(arr, filters, idat_pieces=pieces,
                           extra=chunk(b"tEXt", b"Comment\x00hello") + chunk(b"pHYs", struct.pack(">IIB", 1, 1, 0)))
            assert np.array_equal(decode(buf, channels), arr)
            ref = np.asarray(Image.open(io.BytesIO(buf)))
            assert np.array_equal(ref.reshape(arr.shape), arr)  # Pillow agrees on the crafted file


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_pillow_written_files_equal_pillow(mode):
    rng = np.random.default_rng(3)
    im = Image.fromarray(rng.integers(0, 256, (61, 47, 4), dtype=np.uint8), "RGBA").convert(mode)
    meta = PngImagePlugin.PngInfo()
    meta.add_text("k", "v")
    bio = io.BytesIO()
    im.save(bio, "PNG", pnginfo=meta, dpi=(72, 72))
    ref = np.asarray(Image.open(io.BytesIO(bio.getvalue())))
    got = decode(bio.getvalue(), 1 if ref.ndim == 2 else ref.shape[2])
    assert np.array_equal(got.reshape(ref.shape), ref)


def test_bad_adler_falls_back_to_libpng():
    arr = np.random.default_rng(1).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    z = bytearray(zlib.compress(filtered(arr, (4,))))
    z[-1] ^= 0xFF  # Adler-32 wrong, chunk CRCs right: libdeflate refuses, libpng reads the pixels
    assert np.array_equal(decode(make_png(arr, stream=bytes(z)), 3), arr)


def test_an_invalid_filter_type_is_libpngs_error():
    arr = np.zeros((4, 4, 3), np.uint8)
    raw = bytearray(filtered(arr, (0,)))
    raw[13] = 7  # filter type of row 1
    with pytest.raises(DecodeError) as e:
        decode(make_png(arr, stream=zlib.compress(bytes(raw))), 3)
    assert "filter" in str(e.value).lower()


def test_a_short_stream_is_an_error_not_garbage():
    arr = np.random.default_rng(2).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    z = zlib.compress(filtered(arr, (1,)))
    with pytest.raises(DecodeError):
        decode(make_png(arr, stream=z[: len(z) // 2]), 3)
