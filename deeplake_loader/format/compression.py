"""Codecs of the format (spec §7): lz4 blocks, per-sample image files, the chunk-wise image canvas.
Media files (video, audio, DICOM, NIfTI, LAS, PLY) are decoded by ``format/media``."""

from __future__ import annotations

import io

import numpy as np

from ..errors import DecodeError, UnsupportedError

IMAGE_CODECS = {"jpeg", "png", "webp", "bmp", "tiff", "jpeg2000", "gif", "apng"}
KERNEL_CODECS = {"jpeg", "png"}  # decoded by _kernels.decode; the rest through Pillow
BYTE_CODECS = {"lz4"}
UNSUPPORTED_CODECS = {"stl"}  # deeplake 3.9.52 reads STL meshes through numpy-stl; we do not
ALIASES = {"jpg": "jpeg", "tif": "tiff", "jp2": "jpeg2000"}
_PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "bmp": "BMP", "tiff": "TIFF",
               "jpeg2000": "JPEG2000", "gif": "GIF"}
_LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"


def normalize(codec):
    if codec is None:
        return None
    codec = str(codec).lower()
    return ALIASES.get(codec, codec)


def check_supported(codec, *, tensor=None, chunk=False):
    """UnsupportedError for a compression we do not read (``chunk``: as a chunk compression,
    where media codecs never appear)."""
    from .media import CODECS

    known = IMAGE_CODECS | BYTE_CODECS | (set() if chunk else CODECS)
    if codec is not None and codec not in known:
        raise UnsupportedError(f"compression '{codec}' of tensor '{tensor}' is not supported "
                               "(supported: lz4, jpeg, png and the image formats Pillow reads, "
                               + ("" if chunk else "mp4, mkv, avi, mp3, flac, wav, dcm, nii, nii.gz, las, ply") + ")")


def lz4_decompress(buf) -> bytes:
    import lz4.block
    import lz4.frame

    buf = bytes(buf)
    if not buf or buf == b"\x00" * 5:
        return b""
    try:
        if buf[:4] == _LZ4_FRAME_MAGIC:
            return lz4.frame.decompress(buf)
        return lz4.block.decompress(buf)
    except Exception as e:  # LZ4BlockError, RuntimeError: corrupt or truncated payload
        raise ValueError(f"lz4 payload of {len(buf)} bytes does not decompress ({e})") from None


def lz4_compress(buf) -> bytes:
    import lz4.block

    buf = bytes(buf)
    return lz4.block.compress(buf) if buf else b""


def sniff(buf) -> str | None:
    """The image codec of a file's leading bytes (None if not recognised)."""
    head = bytes(buf[:12])
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM":
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def pil_decode(buf) -> np.ndarray:
    """Pillow's decode of one image file, as deeplake reads it (np.array of the opened image)."""
    from PIL import Image

    from ..limits import check_size

    try:
        with Image.open(io.BytesIO(bytes(buf))) as im:  # lazy: the header only
            too_big = check_size(*im.size)
            if too_big is None:
                return np.array(im)
    except Exception as e:  # Pillow raises many types for bad bytes
        raise DecodeError(f"not a readable image ({type(e).__name__}: {e})") from None
    raise DecodeError(f"image too large: {too_big}")


def decode_images(buffers, codec, shapes, num_threads=1):
    """Decode image files to arrays of the given (H,W,C) shapes. jpeg/png go through the native
    batch kernel; DecodeError.position says which buffer failed."""
    from .._kernels import decode as kernel

    out = [None] * len(buffers)
    native = [i for i, b in enumerate(buffers) if len(b) and sniff(b) in KERNEL_CODECS]
    if native:
        groups: dict = {}
        for i in native:
            groups.setdefault(shapes[i][-1] if len(shapes[i]) == 3 else 1, []).append(i)
        for channels, idx in groups.items():
            try:
                arrs = kernel.decode([buffers[i] for i in idx], num_threads=num_threads, channels=channels)
            except DecodeError as e:
                e.position = idx[e.position] if e.position is not None and e.position < len(idx) else e.position
                raise
            for k, i in enumerate(idx):
                out[i] = arrs[k]
    for i, b in enumerate(buffers):
        if out[i] is None:
            if not len(b):
                out[i] = None
                continue
            try:
                out[i] = pil_decode(b)
            except DecodeError as e:
                e.position = i
                raise
    return out


def decode_files(buffers, num_threads=1):
    """Whole image files of any supported type, each to its own (H, W, C) array (gray: C = 1),
    for samples whose shape is stored nowhere (link tensors). Empty buffers give None."""
    from .._kernels import decode as kernel

    shapes = []
    for i, b in enumerate(buffers):
        shape = ()
        if len(b) and sniff(b) in KERNEL_CODECS:
            try:
                info = kernel.image_info(b)
            except DecodeError as e:
                e.position = i
                raise
            shape = (info[1], info[2], info[3])
        shapes.append(shape)
    arrs = decode_images(buffers, None, shapes, num_threads)
    return [a if a is None or a.ndim == 3 else a.reshape(a.shape[:2] + (-1,)) for a in arrs]


def encode_image(arr: np.ndarray, codec: str, **options) -> bytes:
    """Encode an (H,W[,C]) uint8 array to a file, as deeplake's compress_array (Pillow, defaults)."""
    from PIL import Image

    if arr.size == 0:
        return b""
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    bio = io.BytesIO()
    fmt = _PIL_FORMAT.get(codec)
    if fmt is None:
        raise UnsupportedError(f"cannot encode images as '{codec}'")
    Image.fromarray(arr).save(bio, fmt, **options)
    return bio.getvalue()


def canvas_crop(canvas: np.ndarray, shapes, j: int) -> np.ndarray:
    """Sample j of a chunk-wise image canvas: samples sit side by side along the width (spec §7.2)."""
    shape = tuple(int(x) for x in shapes[j])
    if 0 in shape:
        return np.zeros(shape, canvas.dtype)
    x = sum(int(s[1]) for s in shapes[:j] if 0 not in tuple(s))
    if canvas.ndim == 2:
        canvas = canvas[..., None]
    return canvas[:shape[0], x:x + shape[1]].reshape(shape)


def build_canvas(arrays, dtype=np.uint8) -> np.ndarray:
    nonempty = [a for a in arrays if a.size]
    if not nonempty:
        return np.zeros((0, 0, 0), dtype)
    c = nonempty[0].shape[2] if nonempty[0].ndim == 3 else 1
    h = max(a.shape[0] for a in nonempty)
    w = sum(a.shape[1] for a in nonempty)
    canvas = np.zeros((h, w, c), dtype)
    x = 0
    for a in nonempty:
        a = a.reshape(a.shape[0], a.shape[1], c)
        canvas[:a.shape[0], x:x + a.shape[1]] = a
        x += a.shape[1]
    return canvas
