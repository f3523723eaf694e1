"""Coverage-guided fuzz targets (atheris/libFuzzer) for the code that parses untrusted bytes and text.

Each target is ``(seeds() -> list of bytes, one_input(data: bytes))``. ``one_input`` may raise only
the library's own errors for bad input (anything else — another exception, a crash, a sanitizer
report, a write outside the output buffer — is a finding). Seeds are generated here (valid files
over the image-variant grid, real chunk layouts, queries from docs/TQL.md), never committed.

Targets: ``chunk`` (chunk header parser + Chunk tables), ``decode`` (JPEG/PNG header probe + batch
decode, strict and not), ``crop`` (the fused crop + DCT scale + resize decode, and the view decode
of fused torchvision pipelines: fractional boxes within limits, CHW uint8/float32), ``png_fast`` (8-bit
PNGs: the libdeflate fast path and its fall-back to libpng) and ``tql`` (lexer, parser and
evaluator). ``tests/fuzz/run.py`` runs them; ``make fuzz`` / ``make sanitize`` call it.
"""

from __future__ import annotations


import numpy as np

GUARD = 64
MAX_FUZZ_PIXELS = 1 << 20  # headers may claim more: the harness lowers the image limit to this


def _guarded(shape, dtype):
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.full(n + 2 * GUARD, 0xA5, np.uint8)
    return raw, raw[GUARD:GUARD + n].view(dtype).reshape(shape)


def _check_guard(raw):
    if not ((raw[:GUARD] == 0xA5).all() and (raw[-GUARD:] == 0xA5).all()):
        raise AssertionError("the kernel wrote outside its output buffer")


# ---- chunk headers -------------------------------------------------------------------------------

def chunk_seeds():
    from deeplake_loader.format.chunk import serialize

    rng = np.random.default_rng(1)
    out = []
    for n, ndim in ((3, 2), (1, 3), (7, 1)):
        shapes = rng.integers(0, 5, (n, ndim))
        nbytes = [int(np.prod(s)) * 2 for s in shapes]
        out.append(serialize(shapes, nbytes, bytes(sum(nbytes))))
    out.append(serialize(np.array([[4, 4, 3]] * 5), [10, 10, 0, 12, 12], bytes(44)))
    out.append(serialize(np.array([[2, 2]]), [8], bytes(8), with_positions=False))
    return out


def chunk_one(data: bytes):
    from deeplake_loader.errors import CorruptDatasetError
    from deeplake_loader.format.chunk import Chunk

    try:
        chunk = Chunk.from_bytes(data)
        n = chunk.num_samples
        if n:
            locs = np.arange(min(n, 4096))
            chunk.shapes_of(locs)
            chunk.byte_ranges(locs)
            chunk.payload(int(locs[-1]))
    except CorruptDatasetError:
        pass


# ---- image decoders ------------------------------------------------------------------------------

def image_seeds():
    from tests.common import images as I

    out = [I.make_jpeg(24, 32, "RGB", seed=1), I.make_jpeg(17, 9, "L", progressive=True, seed=2),
           I.make_jpeg(24, 32, "CMYK", seed=3), I.make_jpeg(40, 30, "RGB", restart_rows=1, subsampling=0, seed=4)]
    out += [I.make_png(kind, 13, 11, seed=5) for kind in I.PNG_KINDS]
    return out


def png_fast_seeds():
    from tests.common import images as I

    return [I.make_png(kind, 19, 23, seed=6) for kind in ("gray8", "la8", "rgb8", "rgba8", "pillow-RGB", "pillow-L")]


def _decode_all(data: bytes):
    from deeplake_loader._kernels import decode as K
    from deeplake_loader.errors import DecodeError

    try:
        K.image_infos([data])  # the batched probe (one row of [codec, h, w, c, bytes per channel])
        info = K.image_info(data)
    except DecodeError:
        return None
    for strict in (True, False):
        raw, out = _guarded((1,) + info.shape, info.dtype)
        try:
            K.decode_batch([data], out, strict=strict)
        except DecodeError:
            pass
        _check_guard(raw)
    return info


def decode_one(data: bytes):
    _decode_all(data)


def png_fast_one(data: bytes):
    _decode_all(b"\x89PNG\r\n\x1a\n" + data[8:] if len(data) >= 8 else data)


def crop_one(data: bytes):
    from deeplake_loader._kernels import decode as K
    from deeplake_loader.errors import DecodeError

    if len(data) < 8:
        return
    y, x, h, w, th, tw, flip, c = data[-8:]
    data = data[:-8]
    try:
        K.image_infos([data])  # the batched probe (one row of [codec, h, w, c, bytes per channel])
        info = K.image_info(data)
    except DecodeError:
        return
    box = np.array([[y % (info.height + 1), x % (info.width + 1), 1 + h % info.height, 1 + w % info.width]], np.int64)
    raw, out = _guarded((1, 1 + th % 40, 1 + tw % 40, (1, 2, 3, 4)[c % 4]), np.uint8)
    try:
        K.decode_crop_batch([data], box, [flip & 1], out, strict=bool(flip & 2))
    except DecodeError:
        pass
    _check_guard(raw)
    # the view decode: limits are the crop box or the whole image, the box a fractional part of them
    b = box[0]
    lim = np.array([[0, 0, info.height, info.width]] if flip & 4 else [[b[0], b[1], b[0] + b[2], b[1] + b[3]]], np.int64)
    lh, lw = lim[0, 2] - lim[0, 0], lim[0, 3] - lim[0, 1]
    fy, fx = (y % 8) / 16.0, (x % 8) / 16.0  # 0 .. 7/16 of the limits cut from each side
    fbox = np.array([[lim[0, 0] + fy * lh, lim[0, 1] + fx * lw, lim[0, 2] - fy * lh, lim[0, 3] - fx * lw]])
    c = (1, 2, 3, 4)[c % 4]
    lut = np.tile(np.arange(256, dtype=np.float32) / 255, (c, 1)) if flip & 8 else None
    raw, out = _guarded((1, c, 1 + th % 40, 1 + tw % 40), np.float32 if lut is not None else np.uint8)
    try:
        K.decode_view_batch([data], fbox, lim, [[flip & 1, (flip >> 4) & 1]], out, lut, strict=bool(flip & 2),
                            dct=(flip >> 5) & 1, order="pillow13" if flip & 64 else "hfirst")
    except DecodeError:
        pass
    _check_guard(raw)


def crop_seeds():
    return [s + bytes([1, 2, 9, 13, 7, 5, 1, 2]) for s in image_seeds()]


# ---- the query language --------------------------------------------------------------------------

QUERIES = [
    "select * where labels == 1", "select * where labels in ('cat', 'dog') and len(boxes) > 1",
    "select * where contains(categories, 'car') order by score desc limit 3 offset 1",
    "(select * where labels == 0) union (select * where score > 0.5)",
    "select * where boxes[:, 2] > 10 and not any(boxes[:, 0] < 0)", "select * where labels between 1 and 3",
    "select * sample by max_weight(labels == 0: 5, labels == 1: 1) replace false limit 4",
    "select * where -score + 2 * 3 % 2 >= 1 or shape(boxes)[0] == 0", "select labels, score where true",
]
_DS = {}


def _query_ds():
    if "ds" not in _DS:
        import deeplake_loader as dl

        ds = dl.empty("mem://fuzz-tql")
        ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog", "car"])
        ds.create_tensor("categories", htype="class_label", class_names=["cat", "dog", "car"])
        ds.create_tensor("boxes", htype="bbox")
        ds.create_tensor("score", dtype="float32")
        ds.extend({"labels": [0, 1, 2, 1], "categories": [[0], [], [1, 2], [2]],
                   "boxes": [np.zeros((k, 4), np.float32) + k for k in range(4)],
                   "score": [0.1, 0.9, -1.0, 2.0]})
        _DS["ds"] = ds
    return _DS["ds"]


def tql_seeds():
    return [q.encode() for q in QUERIES]


def tql_one(data: bytes):
    from deeplake_loader.errors import TQLError
    from deeplake_loader.tql import query_rows

    text = data.decode("utf-8", "replace")
    try:
        query_rows(_query_ds(), text)
    except TQLError:
        pass


TARGETS = {
    "chunk": (chunk_seeds, chunk_one),
    "decode": (image_seeds, decode_one),
    "crop": (crop_seeds, crop_one),
    "png_fast": (png_fast_seeds, png_fast_one),
    "tql": (tql_seeds, tql_one),
}


def prepare():
    """Process-wide set-up of a fuzzing process: a small image limit, so a header claiming a huge
    image is refused (as it would be at its real size) instead of allocating it."""
    import deeplake_loader as dl

    dl.set_max_image_pixels(MAX_FUZZ_PIXELS)


