"""``deeplake_loader.set_max_image_pixels(n)``: the decompression-bomb limit.

A JPEG or PNG header can claim any size (60000x60000 in a 1 kB file). Before any decode path — the
reader, the loader's batch decode, the fused RandomResizedCrop, ``decode_method='pil'`` and the
Pillow fallback for other image types — takes memory of an image's size, it reads the header and
refuses an image of more than this many pixels (height x width) with a DecodeError naming the
tensor, the row and the claimed size. The default, 178,956,970 pixels, is where Pillow (and so
deeplake 3, which decodes with Pillow) refuses an image outright. The setting lives in the
environment variable DEEPLAKE_LOADER_MAX_IMAGE_PIXELS, so processes started afterwards (dataloader
workers, subprocesses) apply the same limit; setting that variable before start-up is the same.

``check_window(value)``: load()'s ``fetch_window`` (chunk reads in flight, pipeline/window.py),
checked where load() receives it.
"""

from __future__ import annotations

import os

import numpy as np

from ._kernels import decode as _kernel

ENV = _kernel.MAX_PIXELS_ENV
DEFAULT = _kernel.DEFAULT_MAX_PIXELS


def set_max_image_pixels(n) -> None:
    """Refuse images whose header claims more than ``n`` pixels (height x width); None: the default."""
    if n is None:
        n = DEFAULT
    elif not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"max image pixels must be a positive int (or None for the default {DEFAULT}), got {n!r}")
    _kernel.set_max_pixels(int(n))
    os.environ[ENV] = str(int(n))


def get_max_image_pixels() -> int:
    return _kernel.max_pixels()


def check_size(width: int, height: int):
    """None, or the reason an image of this size is refused (for decoders other than the kernels,
    e.g. Pillow, which give the size before decoding)."""
    return _kernel.check_pixels(int(height), int(width))


def check_window(value):
    """``fetch_window`` as given to load(): None (automatic) or an int >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"fetch_window must be an int >= 1 (chunk reads in flight) or None, got {value!r}")
    return value
