"""Fetch and decode: run the plan's steps (one load per chunk of the primary tensor), hold the
compressed samples of rows waiting in the shuffle buffer, and assemble each batch's columns —
images decoded by the native batch kernel on ``num_threads`` threads into pooled memory (or
straight to the crop size when the tensor's transform starts with RandomResizedCrop, or straight to
the final (B, C, H, W) batch when it is a torchvision pipeline ``fusion.py`` reproduces)."""

from __future__ import annotations

import io
import os
import threading

import numpy as np

from .._kernels import decode as K
from .._kernels.chunk import slice_bytes
from .. import fusion
from ..errors import DecodeError, DeepLakeLoaderError, TransformError, UnsupportedError
from ..format import compression
from ..sample_forms import data_column, info_tensor_key
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


WHOLE_COLUMN_BYTES = 64 << 20  # fixed-shape tensors up to this size are read whole, once per loader


class Column:
    """How one tensor is read: decode method, native image path, fused crop or fused torchvision
    pipeline (``fused``: its transform then runs in the decoder, ``transform`` is None)."""

    def __init__(self, ds, name, method, transform, mode=None):
        self.name, self.method = name, method
        self._full = None  # the whole column of a small fixed-shape tensor, once read (False: not one)
        self._full_lock = threading.Lock()
        self.reader = ds._reader(name)
        r = self.reader
        r.check_readable()
        self.native = (r.sample_compression in compression.KERNEL_CODECS and not r.tiles and r.seq is None
                       and not r.is_link)  # link tensors: files of any type, fetched and decoded by the reader
        # video, audio, dicom, nifti, las, ply files: decoded by format/media on the decoder's threads
        self.media = r.media_family is not None and r.seq is None and not r.tiles
        self.crop, self.transform = (fused_crop(transform) if (self.native and method == "numpy") else (None, transform))
        # torch terminals only: a fused batch is what torch.stack of torchvision's tensors is
        self.fused = (fusion.fused(self.transform, r) if (self.native and method == "numpy" and mode == "pytorch"
                                                          and self.crop is None) else None)
        if self.fused is not None:
            self.transform = None
        if method == "pil" and r.sample_compression not in compression.KERNEL_CODECS:
            raise ValueError(f"decode_method 'pil' is only for jpeg/png image tensors; tensor '{name}' has "
                             f"sample_compression={r.sample_compression!r}. Use 'numpy' or 'tobytes'.")
        if method == "tobytes" and r.chunk_compression not in (None, "lz4"):
            raise UnsupportedError(f"decode_method 'tobytes' for tensor '{name}': its samples share one "
                                   f"{r.chunk_compression} image per chunk and have no bytes of their own")
        self.info = None  # decode_method 'data': the hidden sample-info tensor of an image tensor
        if method == "data" and info_tensor_key(r.meta) is not None:
            try:
                self.info = ds._with(group="")._reader(info_tensor_key(r.meta))
            except KeyError:
                self.info = None

    @property
    def wants_bytes(self) -> bool:
        return self.method in ("tobytes", "pil") or self.native or self.media

    def raw(self, rows):
        """Per-row stored bytes (when bytes are what this column decodes from) or decoded values."""
        if self.wants_bytes:
            return [bytes(b) for b in self.reader.stored_bytes(rows)]
        full = self._whole_column()
        if full is not None:  # labels and alike: read once, then one fancy index per batch
            return full[rows]
        return self.reader.column(rows)  # one (B, ...) array for fixed-shape raw tensors, else a list

    def _whole_column(self):
        """The tensor's whole column as one array when it is small and of a fixed shape (read once,
        at the first batch or by ``warm``), else None."""
        with self._full_lock:
            if self._full is None:
                r, shape = self.reader, self.reader.fixed_shape
                nbytes = len(r) * int(np.prod(shape or (0,))) * (r.dtype.itemsize if r.dtype is not None else 0)
                self._full = False
                if shape is not None and 0 < nbytes <= WHOLE_COLUMN_BYTES and not self.wants_bytes:
                    try:
                        self._full = r.column()
                    except DeepLakeLoaderError:  # a damaged sample: read batch by batch, so the error
                        pass                     # comes with the batch that holds it, if any does
            return self._full if self._full is not False else None

    def warm(self) -> None:
        """Start reading the whole column on a short-lived thread (a remote dataset's labels are
        then read while the first image chunk is), if it is one to read whole."""
        if self._full is None and self.reader.storage.prefers_ranges:
            threading.Thread(target=self._warm, daemon=True, name="deeplake_loader-warm").start()

    def _warm(self):
        try:
            self._whole_column()
        except Exception:  # noqa: BLE001 - the first batch reads it again and raises there
            with self._full_lock:
                if self._full is None:
                    self._full = False

    def raw_from_chunk(self, chunk, rows, locals_):
        """The same, for rows of one already loaded chunk of this (primary) tensor: one bytes
        object per sample, copied out of the chunk by one native call (GIL released)."""
        if self.wants_bytes and not self.reader.tiles and not self.reader.is_link:
            ranges = self.reader.payload_ranges(chunk, rows, np.arange(len(rows)), locals_)
            return slice_bytes(chunk.data, np.ascontiguousarray(ranges, np.int64))
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
        """The batch's column: an (B, ...) array when possible, else a list (decode_method 'data': a
        list of tensor[i].data() dicts)."""
        out = self._column(col, values, rows, rng)
        if col.method == "data":
            return data_column(col.reader, col.info, list(out), rows, raws=values if col.media else None)
        return out

    def _column(self, col: Column, values, rows, rng):
        if col.method == "tobytes":
            return values
        if col.method != "pil":
            if col.reader.seq is not None:
                return [_stack_items(v) for v in values]
            if col.media:  # names tensor and row itself
                return col.reader.decode_media(values, rows, threads=self.num_threads, alloc=self.pool.array)
            if not col.native:
                return values
        try:
            if col.method == "pil":
                return _pil_images(values)
            return self._images(col, values, rows, rng)
        except DecodeError as e:
            raise e.at(tensor=col.name, index=int(rows[e.position or 0])) from None

    def _images(self, col, bufs, rows, rng):
        if col.fused is not None:  # Plan.bind made sure the tensor holds no empty image
            return col.fused.decode(bufs, K.image_infos(bufs), rng, self.pool, self.num_threads)
        empty = [k for k, b in enumerate(bufs) if not len(b)]  # samples of empty shape (None appended)
        if empty and col.crop is not None:  # as the unfused transform: an empty image cannot be cropped
            k = empty[0]
            raise TransformError(f"transform of tensor '{col.name}' ({type(col.crop).__name__}, fused into the "
                                 f"decoder) cannot crop an empty image (shape {col.reader.shape_of(int(rows[k]))})",
                                 tensor=col.name, index=int(rows[k]))
        if empty:  # one by one: the empty ones as stored, the others decoded
            return [np.zeros(col.reader.shape_of(int(r)), np.uint8) if not len(b) else self._one(b, k)
                    for k, (b, r) in enumerate(zip(bufs, rows))]
        # (n, 5): codec, height, width, channels, bytes per channel; headers only, so the pixel
        # limit holds before any allocation
        infos = K.image_infos(bufs)
        if col.crop is not None:
            boxes, flips = col.crop.plan_many(infos[:, 1:3].tolist(), rng)
            chans = np.unique(infos[:, 3])
            c = int(chans[0]) if len(chans) == 1 else 3
            out = self.pool.array((len(bufs),) + col.crop.size + (c,), np.uint8)
            K.decode_crop_batch(bufs, boxes, flips, out, num_threads=self.num_threads)
            return out
        dims = infos[:, 1:]
        if (dims == dims[0]).all():
            h, w, c, bpc = dims[0].tolist()
            out = self.pool.array((len(bufs), h, w, c), np.uint16 if bpc == 2 else np.uint8)
        else:
            out = [np.empty((h, w, c), np.uint16 if bpc == 2 else np.uint8) for h, w, c, bpc in dims.tolist()]
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
