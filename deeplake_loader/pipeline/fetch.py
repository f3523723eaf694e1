"""Fetch and decode: run the plan's steps (one load per chunk of the primary tensor), hold the
compressed samples of rows waiting in the shuffle buffer, and assemble each batch's columns —
images decoded by the native batch kernel on ``num_threads`` threads into pooled memory (or
straight to the crop size when the tensor's transform starts with RandomResizedCrop)."""

from __future__ import annotations

import io
import os

import numpy as np

from .._kernels import decode as K
from ..errors import DecodeError, UnsupportedError
from ..format import compression
from ..transforms import RandomResizedCrop


def fused_crop(transform):
    """(RandomResizedCrop, rest of the transform or None) when a tensor's transform is, or starts
    with, our RandomResizedCrop; else (None, transform)."""
    if isinstance(transform, RandomResizedCrop):
        return transform, None
    parts = getattr(transform, "transforms", None)  # torchvision.transforms.Compose and alike
    if isinstance(parts, (list, tuple)) and parts and isinstance(parts[0], RandomResizedCrop):
        rest = list(parts[1:])
        return parts[0], (_Chain(rest) if rest else None)
    return None, transform


class _Chain:
    def __init__(self, parts):
        self.parts = parts

    def __call__(self, x):
        for p in self.parts:
            x = p(x)
        return x


class Column:
    """How one tensor is read: decode method, native image path, fused crop."""

    def __init__(self, ds, name, method, transform):
        self.name, self.method = name, method
        self.reader = ds._reader(name)
        r = self.reader
        r.check_readable()
        self.native = (r.sample_compression in compression.KERNEL_CODECS and not r.tiles and r.seq is None
                       and not r.is_link)  # link tensors: files of any type, fetched and decoded by the reader
        self.crop, self.transform = (fused_crop(transform) if (self.native and method == "numpy") else (None, transform))
        if method == "pil" and r.sample_compression not in compression.KERNEL_CODECS:
            raise ValueError(f"decode_method 'pil' is only for jpeg/png image tensors; tensor '{name}' has "
                             f"sample_compression={r.sample_compression!r}. Use 'numpy' or 'tobytes'.")
        if method == "tobytes" and r.chunk_compression not in (None, "lz4"):
            raise UnsupportedError(f"decode_method 'tobytes' for tensor '{name}': its samples share one "
                                   f"{r.chunk_compression} image per chunk and have no bytes of their own")

    @property
    def wants_bytes(self) -> bool:
        return self.method in ("tobytes", "pil") or self.native

    def raw(self, rows):
        """Per-row stored bytes (when bytes are what this column decodes from) or decoded values."""
        if self.wants_bytes:
            return [bytes(b) for b in self.reader.stored_bytes(rows)]
        return self.reader.column(rows)  # one (B, ...) array for fixed-shape raw tensors (labels), else a list

    def raw_from_chunk(self, chunk, rows, locals_):
        """The same, for rows of one already loaded chunk of this (primary) tensor."""
        if self.wants_bytes and not self.reader.tiles and not self.reader.is_link:
            ranges = self.reader.payload_ranges(chunk, rows, np.arange(len(rows)), locals_)
            return [bytes(chunk.data[s:e]) for s, e in ranges]
        return self.raw(rows)


def _stack_items(items):
    """A sequence sample: its items as one array when their shapes agree (as ``t[i].numpy()``
    gives it), else the list of items."""
    if items and all(isinstance(x, np.ndarray) and x.shape == items[0].shape for x in items):
        return np.stack(items)
    return items


class Decoder:
    """A batch's column from its stored values. Every decode error names the tensor and the exact
    row (the kernel reports the batch position) and keeps the codec library's own reason; every
    image header is checked against the pixel limit (``deeplake_loader.set_max_image_pixels``)
    before memory of the image's size is taken. Empty payloads reach here only for samples of
    empty shape (``TensorReader.payload_ranges`` refuses the others)."""

    def __init__(self, pool, num_threads):
        self.pool = pool
        self.num_threads = num_threads or os.cpu_count() or 1

    def column(self, col: Column, values, rows, rng):
        """The batch's column: an (B, ...) array when possible, else a list."""
        if col.method == "tobytes":
            return values
        if col.method != "pil":
            if col.reader.seq is not None:
                return [_stack_items(v) for v in values]
            if not col.native:
                return values
        try:
            if col.method == "pil":
                return _pil_images(values)
            return self._images(col, values, rows, rng)
        except DecodeError as e:
            raise e.at(tensor=col.name, index=int(rows[e.position or 0])) from None

    def _images(self, col, bufs, rows, rng):
        if any(not len(b) for b in bufs):  # empty samples (None appended): one by one, no crop
            return [np.zeros(col.reader.shape_of(int(r)), np.uint8) if not len(b) else self._one(b, k)
                    for k, (b, r) in enumerate(zip(bufs, rows))]
        infos = K.image_infos(bufs)  # headers only: the pixel limit holds before any allocation
        if col.crop is not None:
            boxes, flips = col.crop.plan_many([(s[1], s[2]) for s in infos], rng)
            chans = {s[3] for s in infos}
            c = chans.pop() if len(chans) == 1 else 3
            out = self.pool.array((len(bufs),) + col.crop.size + (c,), np.uint8)
            K.decode_crop_batch(bufs, boxes, flips, out, num_threads=self.num_threads)
            return out
        shapes = {(s[1], s[2], s[3], s.dtype) for s in infos}
        if len(shapes) == 1:
            h, w, c, dtype = shapes.pop()
            out = self.pool.array((len(bufs), h, w, c), dtype)
        else:
            out = [np.empty((s[1], s[2], s[3]), s.dtype) for s in infos]
        K.decode_batch(bufs, out, num_threads=self.num_threads)
        return out

    @staticmethod
    def _one(buf, position):
        try:
            return K.decode([buf])[0]
        except DecodeError as e:
            e.position = position
            raise


def _pil_images(values):
    """decode_method 'pil': Pillow images, loaded here so that a bad sample fails with its row
    (headers checked by the kernel first: the pixel limit, and Pillow's own bomb check after)."""
    from PIL import Image

    out = []
    for k, v in enumerate(values):
        if not len(v):
            out.append(None)
            continue
        try:
            K.image_infos([v])
            im = Image.open(io.BytesIO(v))
            im.load()
        except DecodeError as e:
            e.position = k
            raise
        except Exception as e:  # noqa: BLE001 - Pillow raises many types for bad bytes
            raise DecodeError(f"Pillow cannot read the image ({type(e).__name__}: {e})", position=k) from None
        out.append(im)
    return out
