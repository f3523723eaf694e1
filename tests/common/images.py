"""JPEG/PNG test images over a variant grid, generated with Pillow (and a tiny PNG writer for
the bit depths/colour types Pillow cannot write), plus Pillow reference decodes.

Pixel values are deterministic functions of (seed, position), smooth enough that JPEG keeps
them close, so a decode that mixes up rows, columns or channels shows large differences.
"""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

# ---- pixel content ---------------------------------------------------------------------------


def pattern(h: int, w: int, channels: int = 3, seed: int = 0, dtype=np.uint8) -> np.ndarray:
    """Smooth gradients + a seed-dependent offset + mild texture, shape (h, w, channels)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    maxv = float(np.iinfo(dtype).max)
    out = np.empty((h, w, channels), np.float64)
    for c in range(channels):
        fy, fx, ph = rng.uniform(0.02, 0.2), rng.uniform(0.02, 0.2), rng.uniform(0, 6.3)
        v = 0.5 + 0.35 * np.sin(yy * fy + ph) * np.cos(xx * fx + c) + 0.1 * np.sin((xx + yy) * 0.7)
        out[..., c] = v * maxv
    return np.clip(np.rint(out), 0, maxv).astype(dtype)


def photo(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Photo-like content: soft gradients and blobs plus sensor-like noise (uint8). Used where a
    test's tolerance depends on image statistics (the DCT-scaled crop path)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((h, w, channels), np.float64)
    for c in range(channels):
        v = 128 + 50 * np.sin(xx * rng.uniform(0.005, 0.03) + rng.uniform(0, 6.3)) * np.cos(yy * rng.uniform(0.005, 0.03))
        for _ in range(5):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.05, 0.3) * max(h, w)
            v += rng.uniform(-70, 70) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        out[..., c] = v + rng.normal(0, 5, (h, w))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ---- JPEG ------------------------------------------------------------------------------------

JPEG_SIZES = [(1, 1), (7, 13), (13, 7), (16, 16), (33, 47), (375, 500)]


def make_jpeg(h: int, w: int, mode: str = "RGB", quality: int = 90, subsampling: int = 2,
              progressive: bool = False, restart_rows: int = 0, seed: int = 0,
              content: str = "pattern") -> bytes:
    """A JPEG written by Pillow. ``mode`` is "L", "RGB" or "CMYK"; ``subsampling`` 0 = 4:4:4,
    1 = 4:2:2, 2 = 4:2:0; ``content`` "pattern" (textured) or "photo" (see ``photo``)."""
    channels = {"L": 1, "RGB": 3, "CMYK": 4}[mode]
    arr = pattern(h, w, channels, seed) if content == "pattern" else photo(h, w, channels, seed)
    im = Image.fromarray(arr[..., 0] if channels == 1 else arr, mode)
    kw = {"quality": quality, "progressive": progressive}
    if mode != "L":
        kw["subsampling"] = subsampling
    if restart_rows:
        kw["restart_marker_rows"] = restart_rows
    bio = io.BytesIO()
    im.save(bio, "JPEG", **kw)
    return bio.getvalue()


def jpeg_variants() -> list[tuple[str, dict]]:
    """(test id, make_jpeg kwargs) over sizes x modes x progressive/restart x subsampling x quality
    (a covering subset of the full product, so the suite stays fast)."""
    out = []
    for h, w in JPEG_SIZES:
        for mode in ("L", "RGB", "CMYK"):
            out.append((f"{mode}-{h}x{w}", dict(h=h, w=w, mode=mode)))
    for sub in (0, 1, 2):
        for q in (50, 95):
            for prog in (False, True):
                out.append((f"RGB-33x47-sub{sub}-q{q}-{'prog' if prog else 'base'}",
                            dict(h=33, w=47, mode="RGB", subsampling=sub, quality=q, progressive=prog)))
    out.append(("RGB-64x80-restart", dict(h=64, w=80, mode="RGB", restart_rows=1)))
    out.append(("L-64x80-restart-prog", dict(h=64, w=80, mode="L", restart_rows=2, progressive=True)))
    out.append(("CMYK-40x30-prog", dict(h=40, w=30, mode="CMYK", progressive=True)))
    out.append(("RGB-375x500-prog", dict(h=375, w=500, mode="RGB", progressive=True)))
    return out


# ---- PNG -------------------------------------------------------------------------------------

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_ADAM7 = [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1)]


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _pack_rows(a: np.ndarray, bit_depth: int) -> bytes:
    """Serialise (h, w, c) samples as filter-0 scanlines."""
    h = a.shape[0]
    rows = []
    for y in range(h):
        r = a[y].reshape(-1)
        if bit_depth == 16:
            raw = r.astype(">u2").tobytes()
        elif bit_depth == 8:
            raw = r.astype(np.uint8).tobytes()
        else:
            per = 8 // bit_depth
            vals = np.zeros(-(-r.size // per) * per, np.uint8)
            vals[: r.size] = r
            vals = vals.reshape(-1, per)
            packed = np.zeros(vals.shape[0], np.uint8)
            for k in range(per):
                packed |= (vals[:, k] << (8 - bit_depth * (k + 1))).astype(np.uint8)
            raw = packed.tobytes()
        rows.append(b"\x00" + raw)
    return b"".join(rows)


def write_png(samples: np.ndarray, color_type: int, bit_depth: int, palette: np.ndarray | None = None,
              trns: bytes | None = None, interlace: bool = False) -> bytes:
    """Minimal PNG encoder: ``samples`` (h, w, c) integer array of raw sample values."""
    h, w = samples.shape[:2]
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    if interlace:
        raw = b"".join(_pack_rows(samples[sy::dy, sx::dx], bit_depth)
                       for sy, sx, dy, dx in _ADAM7 if samples[sy::dy, sx::dx].size)
    else:
        raw = _pack_rows(samples, bit_depth)
    out = _PNG_SIG + _chunk(b"IHDR", ihdr)
    if palette is not None:
        out += _chunk(b"PLTE", palette.astype(np.uint8).tobytes())
    if trns is not None:
        out += _chunk(b"tRNS", trns)
    return out + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")


PNG_KINDS = ["gray1", "gray2", "gray4", "gray8", "gray8-trns", "gray16", "la8", "la16", "rgb8",
             "rgb16", "rgba8", "rgba16", "palette", "palette-trns", "palette4", "rgb8-interlaced",
             "gray16-interlaced", "pillow-RGB", "pillow-L", "pillow-P"]


def make_png(kind: str, h: int, w: int, seed: int = 0) -> bytes:
    """A PNG of the given kind (see PNG_KINDS)."""
    interlace = kind.endswith("-interlaced")
    base = kind.replace("-interlaced", "")
    if base.startswith("pillow-"):
        mode = base.split("-", 1)[1]
        arr = pattern(h, w, 3, seed)
        im = Image.fromarray(arr, "RGB")
        im = im.convert(mode) if mode != "P" else im.quantize(16)
        bio = io.BytesIO()
        im.save(bio, "PNG")
        return bio.getvalue()
    if base.startswith("palette"):
        bits = 4 if base == "palette4" else 8
        n = 1 << bits
        rng = np.random.default_rng(seed)
        pal = rng.integers(0, 256, (n, 3))
        idx = pattern(h, w, 1, seed).astype(np.int64) % n
        trns = bytes(rng.integers(0, 256, n // 2).astype(np.uint8)) if base == "palette-trns" else None
        return write_png(idx, 3, bits, palette=pal, trns=trns, interlace=interlace)
    if base.startswith("gray") and base[4:].split("-")[0] in ("1", "2", "4"):
        bits = int(base[4:].split("-")[0])
        vals = pattern(h, w, 1, seed) >> (8 - bits)
        return write_png(vals, 0, bits, interlace=interlace)
    name, _, extra = base.partition("-")
    bits = 16 if name.endswith("16") else 8
    ct, ch = {"gray": (0, 1), "la": (4, 2), "rgb": (2, 3), "rgba": (6, 4)}[name.rstrip("0123456789")]
    vals = pattern(h, w, ch, seed, np.uint16 if bits == 16 else np.uint8)
    trns = struct.pack(">H", int(vals[0, 0, 0])) if extra == "trns" else None
    return write_png(vals, ct, bits, trns=trns, interlace=interlace)


# ---- Pillow references -----------------------------------------------------------------------


def pillow_array(buf: bytes, channels: int | None = None) -> np.ndarray:
    """What the kernel must return for ``buf``: Pillow's decode as (H, W, C).

    Palette images are expanded (RGBA when they carry transparency), 1-bit images become 0/255,
    and ``channels == 3`` converts like ``Image.convert("RGB")``."""
    im = Image.open(io.BytesIO(buf))
    im.load()
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode == "1":
        im = im.convert("L")
    if channels == 3 and im.mode != "RGB":
        im = im.convert("RGB")
    a = np.asarray(im)
    return a[..., None] if a.ndim == 2 else a
