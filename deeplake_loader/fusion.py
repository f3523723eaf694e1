"""Torchvision pipelines run natively: a tensor's transform that is a torchvision ``Compose`` (v1
``torchvision.transforms`` or ``torchvision.transforms.v2``) made only of steps we can reproduce is
turned into a plan of native steps — decode, crop, resize, flip, then the CHW layout and the value
mapping of ToTensor / ToDtype / Normalize — and the decoder writes each batch straight into the
final ``(B, C, H, W)`` float32 (or uint8) array, with no Python per sample and no worker process.

``recognise(transform) -> Plan`` (or ``NotFusable`` with the reason) reads the transform only;
``Plan.bind(reader)`` checks it against the tensor's metadata (8-bit images of 1 or 3 channels,
none empty, every crop fitting the smallest image, a fixed output size) and gives the
``FusedImages`` the decoder calls once per batch. ``fused(transform, reader)`` is both, or None:
anything not recognised, or not provably reproducible on that tensor, runs as before (torchvision
per sample). ``DEEPLAKE_LOADER_FUSE_TORCHVISION=0`` turns fusion off.

What a fused batch reproduces, and how exactly (``tests/integration/test_torchvision_fusion.py``
measures it against real torchvision; README "Torchvision pipelines"):

* the per-sample result's dtype, layout, shape and range: what ``torch.stack`` of torchvision's
  outputs is (float32 CHW after ToTensor / ToDtype(float32) / ConvertImageDtype / Normalize,
  uint8 CHW after PILToTensor / ToImage alone);
* geometry: a box per image in source pixels plus the pixels its filter may read (the crop before
  a resize, or the whole image for a resize followed by crops), Pillow's antialiased bilinear
  filter (``_kernels/src/decode_resample.c``) in the installed Pillow's pass order where
  torchvision resizes PIL images, JPEGs decoded at full size (no DCT scaling, unlike our own
  RandomResizedCrop): the bytes are then Pillow's, where torchvision's are;
* values: a per-channel table of the 256 byte values computed in float32 with torchvision's own
  operation order (``x / 255``, ``x * (1 / 255)``, ``(x - mean) / std``), so a pixel equal to
  torchvision's resized byte gives exactly torchvision's float;
* randomness: torchvision's algorithms (RandomResizedCrop.get_params: 10 attempts of a uniform
  area fraction and a log-uniform aspect ratio, then the centre fallback; RandomCrop's uniform
  offsets; flips with probability p), drawn from the batch's own generator (the decoder's ``rng``,
  seeded by epoch, rank and batch), so runs repeat under ``deeplake_loader.random.seed`` and
  resume exactly — the same distributions as torchvision, not torch's random stream.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
from dataclasses import dataclass

import numpy as np

ENV = "DEEPLAKE_LOADER_FUSE_TORCHVISION"

__all__ = ["ENV", "NotFusable", "Plan", "FusedImages", "enabled", "recognise", "fused", "explain"]


class NotFusable(ValueError):
    """The transform (or the tensor) is outside what the native path reproduces; the reason says what."""


def enabled() -> bool:
    """False when ``$DEEPLAKE_LOADER_FUSE_TORCHVISION`` is 0 / false / no / off."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


# ------------------------------------------------------------------------------------- geometry
class _State:
    """Per-image view of the source while the geometry steps run, vectorised over the batch: the
    source box the current image covers (float), the pixels a resample may read (the box before
    any resize), the current size, and pending flips."""

    def __init__(self, hw):
        hw = np.asarray(hw, np.int64).reshape(-1, 2)
        self.h, self.w = hw[:, 0].copy(), hw[:, 1].copy()
        n = len(hw)
        self.box = np.zeros((n, 4), np.float64)  # y0, x0, y1, x1
        self.box[:, 2], self.box[:, 3] = self.h, self.w
        self.lim = np.zeros((n, 4), np.int64)
        self.lim[:, 2], self.lim[:, 3] = self.h, self.w
        self.flip = np.zeros((n, 2), bool)  # left-right, top-bottom
        self.resized = False

    def crop(self, top, left, ch, cw):
        """Crop (top, left, ch, cw) of the current image (what it shows, flips included)."""
        top, left = np.asarray(top, np.float64), np.asarray(left, np.float64)
        ch, cw = np.broadcast_to(np.asarray(ch, np.int64), self.h.shape), np.broadcast_to(np.asarray(cw, np.int64), self.h.shape)
        b = self.box
        sy, sx = (b[:, 2] - b[:, 0]) / self.h, (b[:, 3] - b[:, 1]) / self.w
        y0 = np.where(self.flip[:, 1], b[:, 2] - (top + ch) * sy, b[:, 0] + top * sy)
        y1 = np.where(self.flip[:, 1], b[:, 2] - top * sy, b[:, 0] + (top + ch) * sy)
        x0 = np.where(self.flip[:, 0], b[:, 3] - (left + cw) * sx, b[:, 1] + left * sx)
        x1 = np.where(self.flip[:, 0], b[:, 3] - left * sx, b[:, 1] + (left + cw) * sx)
        self.box = np.stack([y0, x0, y1, x1], axis=1)
        if not self.resized:  # still whole source pixels: the crop is what a later resize reads
            self.lim = np.rint(self.box).astype(np.int64)
        self.h, self.w = ch.astype(np.int64).copy(), cw.astype(np.int64).copy()

    def resize(self, nh, nw):
        self.h = np.broadcast_to(np.asarray(nh, np.int64), self.h.shape).copy()
        self.w = np.broadcast_to(np.asarray(nw, np.int64), self.w.shape).copy()
        self.resized = True


def _fits(state, th, tw, what):
    small = (state.h < th) | (state.w < tw)
    if small.any():
        k = int(np.flatnonzero(small)[0])
        raise _TooSmall(k, f"{what} {th}x{tw} does not fit an image of {int(state.h[k])}x{int(state.w[k])} "
                           "(smaller than the tensor's min_shape says any image is)")


class _TooSmall(Exception):
    def __init__(self, position, message):
        super().__init__(message)
        self.position = position


@dataclass(frozen=True)
class _Resize:
    size: tuple  # (s,) for the shorter edge, or (h, w)

    def apply(self, st, rng):
        if len(self.size) == 2:
            st.resize(self.size[0], self.size[1])
            return
        s = self.size[0]
        short, long = np.minimum(st.h, st.w), np.maximum(st.h, st.w)
        new_long = ((s * long) / short).astype(np.int64)  # int(s * long / short), as torchvision
        tall = st.w <= st.h
        st.resize(np.where(tall, new_long, s), np.where(tall, s, new_long))

    def bounds(self, lo, hi):
        if len(self.size) == 2:
            return self.size, self.size, True
        s = self.size[0]
        return (s, s), None, None  # both edges >= s; the longer one follows the image


@dataclass(frozen=True)
class _FixedCrop:
    """A crop to a fixed (h, w): its output size is known before any image is seen."""
    size: tuple

    def bounds(self, lo, hi):
        return self.size, self.size, True


@dataclass(frozen=True)
class _CenterCrop(_FixedCrop):
    def apply(self, st, rng):
        th, tw = self.size
        _fits(st, th, tw, "CenterCrop")
        # int(round((h - th) / 2.0)): Python's round, half to even, like numpy's
        st.crop(np.round((st.h - th) / 2.0), np.round((st.w - tw) / 2.0), th, tw)


@dataclass(frozen=True)
class _RandomCrop(_FixedCrop):
    def apply(self, st, rng):
        th, tw = self.size
        _fits(st, th, tw, "RandomCrop")
        st.crop(rng.integers(0, st.h - th + 1), rng.integers(0, st.w - tw + 1), th, tw)


@dataclass(frozen=True)
class _RandomResizedCrop:
    size: tuple
    scale: tuple
    ratio: tuple

    def apply(self, st, rng):
        """torchvision's RandomResizedCrop.get_params for every image at once: 10 attempts of an
        area fraction ~ U(scale) and a log aspect ratio ~ U(log ratio); the first attempt whose
        rounded box fits wins, at a uniform position; else the centre crop at the nearest allowed
        ratio."""
        n = len(st.h)
        h, w = st.h.astype(np.float64), st.w.astype(np.float64)
        area = (h * w)[:, None]
        target = area * rng.uniform(self.scale[0], self.scale[1], size=(n, 10))
        aspect = np.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), size=(n, 10)))
        cw = np.round(np.sqrt(target * aspect))  # int(round(...)): half to even
        ch = np.round(np.sqrt(target / aspect))
        ok = (cw > 0) & (cw <= w[:, None]) & (ch > 0) & (ch <= h[:, None])
        found = ok.any(axis=1)
        first = np.argmax(ok, axis=1)
        rows = np.arange(n)
        bh, bw = ch[rows, first].astype(np.int64), cw[rows, first].astype(np.int64)
        # the fallback: whole width or height at the nearest allowed ratio, centred
        in_ratio = w / h
        r0, r1 = self.ratio
        fw = np.where(in_ratio < r0, st.w, np.where(in_ratio > r1, np.round(h * r1), st.w)).astype(np.int64)
        fh = np.where(in_ratio < r0, np.round(w / r0), np.where(in_ratio > r1, st.h, st.h)).astype(np.int64)
        bh, bw = np.where(found, bh, fh), np.where(found, bw, fw)
        # positions only for the images whose attempt succeeded (uniform, inclusive of the far edge)
        top = np.where(found, 0, (st.h - bh) // 2)
        left = np.where(found, 0, (st.w - bw) // 2)
        if found.any():
            top[found] = rng.integers(0, (st.h - bh + 1)[found])
            left[found] = rng.integers(0, (st.w - bw + 1)[found])
        st.crop(top, left, bh, bw)
        st.resize(*self.size)

    def bounds(self, lo, hi):
        return self.size, self.size, True


@dataclass(frozen=True)
class _Flip:
    axis: int  # 0 left-right, 1 top-bottom
    p: float

    def apply(self, st, rng):
        draw = rng.random(len(st.h)) < self.p
        st.flip[:, self.axis] ^= draw

    def bounds(self, lo, hi):
        return lo, hi, None


# ------------------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Plan:
    """A recognised pipeline: geometry steps (in order), value steps (in order, applied in
    float32), the output dtype, and what one sample is (a plain tensor or a tv_tensors.Image)."""

    geometry: tuple
    values: tuple  # ("div255",) | ("mul255",) | ("float",) | ("normalize", mean, std)
    dtype: str  # "float32" | "uint8"
    form: str  # "tensor" | "image"
    description: str = ""
    resize_on: str = "pil"  # what the resize step resamples: "pil" (Pillow), "uint8" / "float32" (torch)

    def lut(self, channels):
        """(C, 256) float32: each byte's value after the value steps, in torch's float32 order."""
        if self.dtype == "uint8":
            return None
        x = np.tile(np.arange(256, dtype=np.float32), (channels, 1))
        for op in self.values:
            if op[0] == "div255":
                x = x / np.float32(255)
            elif op[0] == "mul255":
                x = x * np.float32(1.0 / 255)
            elif op[0] == "normalize":
                mean = np.broadcast_to(np.asarray(op[1], np.float32).reshape(-1, 1), (channels, 1))
                std = np.broadcast_to(np.asarray(op[2], np.float32).reshape(-1, 1), (channels, 1))
                x = (x - mean) / std
        return np.ascontiguousarray(x, np.float32)

    def bind(self, reader) -> "FusedImages":
        """The plan on one tensor, checked against its metadata; NotFusable says why not."""
        if reader.dtype is None or np.dtype(reader.dtype) != np.uint8:
            raise NotFusable(f"tensor '{reader.name}' holds {reader.dtype} images, not uint8")
        lo, hi = tuple(reader.min_shape), tuple(reader.max_shape)
        if len(lo) != 3 or len(hi) != 3:
            raise NotFusable(f"tensor '{reader.name}' has no (height, width, channels) min_shape/max_shape in its meta")
        if 0 in lo:
            raise NotFusable(f"tensor '{reader.name}' may hold empty images (min_shape {list(lo)})")
        if lo[2] != hi[2] or lo[2] not in (1, 3):
            raise NotFusable(f"tensor '{reader.name}' images have {lo[2]}..{hi[2]} channels (fused: all 1 or all 3)")
        channels = int(lo[2])
        for op in self.values:
            if op[0] == "normalize":
                for name, v in (("mean", op[1]), ("std", op[2])):
                    if len(v) not in (1, channels):
                        raise NotFusable(f"Normalize has {len(v)} {name} values for {channels}-channel images")
        low, high, fixed = tuple(lo[:2]), tuple(hi[:2]), lo[:2] == hi[:2]
        for step in self.geometry:
            if isinstance(step, _FixedCrop) and (low[0] < step.size[0] or low[1] < step.size[1]):
                raise NotFusable(f"{type(step).__name__[1:]}{step.size} may not fit the smallest images "
                                 f"({low[0]}x{low[1]}): torchvision pads or raises there")
            low, high, now_fixed = step.bounds(low, high)
            fixed = fixed if now_fixed is None else now_fixed
        if not fixed:
            raise NotFusable(f"the output size depends on each image's size (tensor '{reader.name}' images are "
                             f"{lo[0]}x{lo[1]} to {hi[0]}x{hi[1]})")
        return FusedImages(self, channels)


def _stack_form(form, batch):
    """A fused batch as what indexing it per sample gives under the per-sample path (a collate_fn,
    ``batch_size=None``): torch tensors (tv_tensors.Image after v2's ToImage), over the same memory."""
    import torch

    t = torch.from_numpy(batch)
    if form == "image":
        from torchvision import tv_tensors

        return [tv_tensors.Image(x) for x in t]
    return t


class FusedImages:
    """A plan bound to a tensor: ``decode(bufs, infos, rng, pool, num_threads)`` is the batch."""

    def __init__(self, plan: Plan, channels: int):
        self.plan, self.channels = plan, channels
        self._lut = plan.lut(channels)
        self.dtype = np.dtype(plan.dtype)
        self.sample_form = functools.partial(_stack_form, plan.form)
        # Pillow's pass order where Pillow resizes; torch's tensor kernels go horizontally first
        self._order = _pillow_order() if plan.resize_on == "pil" else "hfirst"

    def __repr__(self):
        return f"FusedImages({self.plan.description}, channels={self.channels}, dtype={self.dtype})"

    def views(self, hw, rng):
        """(boxes (B, 4) float64, limits (B, 4) int64, flips (B, 2) uint8, (th, tw)) for images of
        sizes ``hw`` (B, 2); ``DecodeError`` (with the batch position) if one breaks the plan."""
        from .errors import DecodeError

        st = _State(hw)
        try:
            for step in self.plan.geometry:
                step.apply(st, rng)
        except _TooSmall as e:
            raise DecodeError(str(e), position=e.position) from None
        if len(st.h) and ((st.h != st.h[0]).any() or (st.w != st.w[0]).any()):
            k = int(np.flatnonzero((st.h != st.h[0]) | (st.w != st.w[0]))[0])
            raise DecodeError(f"fused torchvision output {int(st.h[k])}x{int(st.w[k])} differs from the batch's "
                              f"{int(st.h[0])}x{int(st.w[0])} (images of another size than the tensor's meta says)",
                              position=k)
        size = (int(st.h[0]), int(st.w[0])) if len(st.h) else (0, 0)
        return st.box, st.lim, st.flip.astype(np.uint8), size

    def decode(self, bufs, infos, rng, pool, num_threads):
        from ._kernels import decode as K
        from .errors import DecodeError

        bad = np.flatnonzero((infos[:, 3] != self.channels) | (infos[:, 4] != 1))
        if len(bad):
            k = int(bad[0])
            raise DecodeError(f"image has {int(infos[k, 3])} channels of {8 * int(infos[k, 4])} bits where the tensor's "
                              f"meta says {self.channels} of 8 (fused torchvision pipeline; set {ENV}=0 to run it "
                              "per sample)", position=k)
        boxes, limits, flips, (th, tw) = self.views(infos[:, 1:3], rng)
        out = pool.array((len(bufs), self.channels, th, tw), self.dtype)
        # full-size JPEG decode (no DCT scaling): the bytes are then exactly Pillow's decode + resize
        K.decode_view_batch(bufs, boxes, limits, flips, out, self._lut, num_threads=num_threads, dct=0,
                            order=self._order)
        return out


@functools.lru_cache(maxsize=1)
def _pillow_order() -> str:
    """The installed Pillow's resampling pass order (``decode_view_batch``'s ``order``): Pillow 13
    goes vertically first when the height shrinks much more than the width; earlier ones never."""
    import PIL

    try:
        major = int(PIL.__version__.split(".")[0])
    except ValueError:  # pragma: no cover - a version we cannot read: the newer order
        major = 13
    return "pillow13" if major >= 13 else "hfirst"


# ---------------------------------------------------------------------------------- recognition
class _Absent:
    """Stands for a transform class this torchvision does not have (matches no object)."""


class _Names:
    """A transforms module's classes by name; ``_Absent`` for names it lacks (another version)."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return getattr(self._module, name, _Absent)


def _tv():
    """torchvision's v1 and v2 transform modules (imported only for a torchvision transform)."""
    import torchvision.transforms as v1

    try:
        import torchvision.transforms.v2 as v2
    except ImportError:  # torchvision < 0.15: v1 only
        v2 = None
    return _Names(v1), _Names(v2)


def _is_torchvision(t) -> bool:
    return type(t).__module__.startswith("torchvision.transforms")


def _flatten(t, v1, v2):
    if type(t) in (v1.Compose, v2.Compose):
        out = []
        for part in t.transforms:
            out.extend(_flatten(part, v1, v2))
        return out
    return [t]


def _size(size, what):
    if isinstance(size, numbers.Integral):
        return (int(size), int(size))
    size = tuple(int(v) for v in size)
    if len(size) == 1:
        return (size[0], size[0])
    if len(size) != 2 or min(size) < 1:
        raise NotFusable(f"{what} size {size!r}")
    return size


def _bilinear(interpolation, what):
    name = getattr(interpolation, "value", interpolation)
    if isinstance(name, numbers.Integral) and not isinstance(name, bool):
        name = {2: "bilinear"}.get(int(name), str(name))  # PIL.Image.BILINEAR
    if str(name).lower() != "bilinear":
        raise NotFusable(f"{what} interpolation {interpolation!r} (fused: bilinear only)")


def _antialias(antialias, kind, what):
    """Tensors resize with antialias=True like Pillow; False/None (no antialias) only on PIL images,
    which torchvision always antialiases."""
    if antialias is not True and kind != "pil":
        raise NotFusable(f"{what} antialias={antialias!r} on a tensor (fused: the antialiased filter)")


def _floats(v, what):
    try:
        import torch

        if isinstance(v, torch.Tensor):
            v = v.tolist()
    except ImportError:  # pragma: no cover - a torchvision transform implies torch
        pass
    if isinstance(v, numbers.Real):
        v = [v]
    out = tuple(float(x) for x in v)
    if not out:
        raise NotFusable(f"{what} is empty")
    return out


def recognise(transform) -> Plan:
    """The native plan of a torchvision pipeline, or NotFusable naming the step that is not."""
    if not _is_torchvision(transform):
        raise NotFusable(f"{type(transform).__name__} is not a torchvision transform")
    v1, v2 = _tv()
    import torch

    steps = _flatten(transform, v1, v2)
    kind = "ndarray"  # what the transform receives: an (H, W, C) uint8 numpy array
    form = "tensor"
    geometry, values = [], []
    resize_on = "pil"
    for t in steps:
        ty, name = type(t), type(t).__name__
        if ty in (v1.ToPILImage, v2.ToPILImage):
            if getattr(t, "mode", None) is not None:
                raise NotFusable(f"ToPILImage(mode={t.mode!r})")
            if kind not in ("ndarray", "uint8"):
                raise NotFusable(f"ToPILImage on a {kind} image")
            kind = "pil"
        elif ty in (v1.PILToTensor, v2.PILToTensor):
            if kind != "pil":
                raise NotFusable(f"PILToTensor on a {kind} image")
            kind, form = "uint8", "tensor"
        elif ty in (v1.ToTensor, v2.ToTensor):
            if kind not in ("ndarray", "pil"):
                raise NotFusable(f"ToTensor on a {kind} image")
            if torch.get_default_dtype() != torch.float32:
                raise NotFusable(f"ToTensor with torch's default dtype {torch.get_default_dtype()}")
            values.append(("div255",))
            kind, form = "float32", "tensor"
        elif ty is v2.ToImage:
            if kind in ("ndarray", "pil"):
                kind = "uint8"
            form = "image"
        elif ty in (v2.ToDtype, v1.ConvertImageDtype, v2.ConvertImageDtype):
            dtype = t.dtype
            scale = True if ty is not v2.ToDtype else bool(t.scale)
            if not isinstance(dtype, torch.dtype):
                raise NotFusable(f"{name} with per-type dtypes {dtype!r}")
            if kind not in ("uint8", "float32"):
                raise NotFusable(f"{name} on a {kind} image")
            if dtype == torch.uint8 and kind == "uint8" or dtype == torch.float32 and kind == "float32":
                pass  # unchanged
            elif dtype == torch.float32 and kind == "uint8":
                # v1 ConvertImageDtype divides by 255; v2's ToDtype / ConvertImageDtype multiply by 1/255
                values.append(("float",) if not scale else (("div255",) if ty is v1.ConvertImageDtype else ("mul255",)))
                kind = "float32"
            else:
                raise NotFusable(f"{name}({dtype}) on a {kind} image")
        elif ty in (v1.Normalize, v2.Normalize):
            if kind != "float32":
                raise NotFusable(f"Normalize on a {kind} image (torchvision raises)")
            mean, std = _floats(t.mean, "Normalize mean"), _floats(t.std, "Normalize std")
            if not all(std):
                raise NotFusable("Normalize std of zero (torchvision raises)")
            values.append(("normalize", mean, std))
        elif ty in (v1.Resize, v2.Resize, v1.CenterCrop, v2.CenterCrop, v1.RandomCrop, v2.RandomCrop,
                    v1.RandomResizedCrop, v2.RandomResizedCrop, v1.RandomHorizontalFlip, v2.RandomHorizontalFlip,
                    v1.RandomVerticalFlip, v2.RandomVerticalFlip):
            if kind == "ndarray":
                raise NotFusable(f"{name} on a numpy array (torchvision raises or passes it through)")
            step = _geometry_step(t, ty, name, kind, geometry, v1, v2)
            if isinstance(step, (_Resize, _RandomResizedCrop)):
                resize_on = kind
            geometry.append(step)
        else:
            raise NotFusable(f"{name} is not one of the fused steps")
    if kind not in ("uint8", "float32"):
        raise NotFusable(f"the pipeline ends with a {kind} image, not a tensor")
    return Plan(tuple(geometry), tuple(values), kind, form, description=" -> ".join(type(t).__name__ for t in steps),
                resize_on=resize_on)


def _resizes(geometry) -> bool:
    return any(isinstance(g, (_Resize, _RandomResizedCrop)) for g in geometry)


def _geometry_step(t, ty, name, kind, geometry, v1, v2):
    if ty in (v1.RandomHorizontalFlip, v2.RandomHorizontalFlip, v1.RandomVerticalFlip, v2.RandomVerticalFlip):
        p = float(t.p)
        if not 0.0 <= p <= 1.0:
            raise NotFusable(f"{name}(p={t.p!r})")
        return _Flip(0 if ty in (v1.RandomHorizontalFlip, v2.RandomHorizontalFlip) else 1, p)
    if ty in (v1.Resize, v2.Resize, v1.RandomResizedCrop, v2.RandomResizedCrop):
        if _resizes(geometry):
            raise NotFusable(f"{name} after another resize (two resamplings)")
        _bilinear(t.interpolation, name)
        _antialias(t.antialias, kind, name)
    if ty in (v1.Resize, v2.Resize):
        if t.max_size is not None or t.size is None:
            raise NotFusable(f"{name}(max_size={t.max_size!r})")
        size = t.size
        if isinstance(size, numbers.Integral):
            size = (int(size),)
        size = tuple(int(v) for v in size)
        if len(size) not in (1, 2) or min(size) < 1:
            raise NotFusable(f"{name}(size={t.size!r})")
        return _Resize(size)
    if ty in (v1.CenterCrop, v2.CenterCrop):
        return _CenterCrop(_size(t.size, name))
    if ty in (v1.RandomCrop, v2.RandomCrop):
        if t.padding not in (None, 0):
            raise NotFusable(f"{name}(padding={t.padding!r})")
        return _RandomCrop(_size(t.size, name))  # pad_if_needed: bind() checks that it never pads
    scale, ratio = tuple(float(v) for v in t.scale), tuple(float(v) for v in t.ratio)
    if len(scale) != 2 or len(ratio) != 2 or not (0 < scale[0] <= scale[1]) or not (0 < ratio[0] <= ratio[1]):
        raise NotFusable(f"{name}(scale={t.scale!r}, ratio={t.ratio!r})")
    return _RandomResizedCrop(_size(t.size, name), scale, ratio)


def explain(transform, tensor=None):
    """None when ``transform`` is fused (on ``tensor``, e.g. ``ds["images"]``, if given), else the
    reason it runs per sample."""
    if not enabled():
        return f"${ENV} turns fusion off"
    reader = getattr(tensor, "reader", tensor)  # a dataset's Tensor, or its TensorReader
    try:
        plan = recognise(transform)
        if reader is not None:
            plan.bind(reader)
    except NotFusable as e:
        return str(e)
    return None


def fused(transform, reader):
    """The FusedImages of ``transform`` on ``reader``'s tensor, or None (run it per sample)."""
    if transform is None or not enabled() or not _is_torchvision(transform):
        return None
    try:
        return recognise(transform).bind(reader)
    except NotFusable:
        return None
