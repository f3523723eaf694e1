"""Checks of the fused torchvision path against REAL torchvision, run inside the torchvision side
venv (``tests/common/tvenv.py``; this worktree on PYTHONPATH): ``python tv_fusion_checks.py CHECK
WORKDIR`` writes a JSON report to ``$TV_RESULT`` and ``tests/integration/test_torchvision_fusion.py``
asserts on it. Every check measures; none asserts here, so a report always comes back whole.

Images are generated (``tests/common/images.py``: photo-like JPEGs of several sizes, grayscale
JPEGs, lossless PNGs) and stored as-is in datasets written by our writer; the torchvision side
always starts from Pillow's decode of the same bytes, as a torch DataLoader + PIL script would.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F1
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F2

REPO = Path(__file__).resolve().parent.parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import deeplake_loader as dl  # noqa: E402
from deeplake_loader import fusion  # noqa: E402
from deeplake_loader.pipeline.memory import BufferPool  # noqa: E402
from deeplake_loader.sample import Sample  # noqa: E402
from deeplake_loader._kernels import decode as K  # noqa: E402
from tests.common.images import make_jpeg, make_png  # noqa: E402

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
RGB_SIZES = [(375, 500), (500, 375), (480, 640), (333, 517), (768, 1024), (257, 301), (240, 320), (299, 299)]


# --------------------------------------------------------------------------------------- corpora
def corpus(workdir, kind):
    """(dataset path, list of stored bytes) of one corpus, written once per workdir."""
    path = Path(workdir) / f"ds-{kind}"
    if kind == "rgb":
        bufs = [make_jpeg(h, w, content="photo", seed=i) for i, (h, w) in enumerate(RGB_SIZES)]
        comp = "jpeg"
    elif kind == "rgb444":
        bufs = [make_jpeg(h, w, content="photo", seed=40 + i, subsampling=0, quality=95)
                for i, (h, w) in enumerate(RGB_SIZES[:4])]
        comp = "jpeg"
    elif kind == "gray":
        bufs = [make_jpeg(h, w, mode="L", content="photo", seed=80 + i) for i, (h, w) in enumerate(RGB_SIZES[:5])]
        comp = "jpeg"
    elif kind == "png":
        bufs = [make_png("rgb", h, w, seed=120 + i) for i, (h, w) in enumerate(RGB_SIZES[:5])]
        comp = "png"
    elif kind == "mixed":  # grayscale and RGB JPEGs in one tensor
        bufs = [make_jpeg(120, 160, mode="L" if i % 2 else "RGB", content="photo", seed=300 + i) for i in range(4)]
        comp = "jpeg"
    elif kind == "same":  # one size: every pipeline (also a plain Resize(int)) has a fixed output
        bufs = [make_jpeg(375, 500, content="photo", seed=200 + i) for i in range(24)]
        comp = "jpeg"
    else:
        raise ValueError(kind)
    if not (path / "dataset_meta.json").exists():
        ds = dl.empty(str(path), overwrite=True)
        with ds:
            ds.create_tensor("images", htype="image", sample_compression=comp)
            ds.create_tensor("labels", htype="class_label", class_names=["a", "b", "c"])
            ds.extend({"images": [Sample(buffer=b, compression=comp) for b in bufs],
                       "labels": [i % 3 for i in range(len(bufs))]})
    return str(path), bufs


def pil_decode(buf):
    """What a torch DataLoader + PIL script hands torchvision (as an HWC array, like our loader)."""
    a = np.asarray(Image.open(io.BytesIO(buf)))
    return a[..., None] if a.ndim == 2 else a


# ---------------------------------------------------------------------------------- the pipelines
def deterministic_pipelines():
    """name -> (Compose, corpus): pipelines without random steps."""
    return {
        "v1-pil-resize256-center224-normalize": (T.Compose([T.ToPILImage(), T.Resize(256), T.CenterCrop(224),
                                                            T.ToTensor(), T.Normalize(MEAN, STD)]), "rgb"),
        "v1-pil-resize224x224-piltotensor": (T.Compose([T.ToPILImage(), T.Resize((224, 224)), T.PILToTensor()]), "rgb"),
        "v1-pil-center200-resize[96]": (T.Compose([T.ToPILImage(), T.CenterCrop(200), T.Resize([96]), T.ToTensor()]),
                                        "rgb"),
        "v1-pil-resize256-center224-444": (T.Compose([T.ToPILImage(), T.Resize(256), T.CenterCrop(224), T.ToTensor()]),
                                           "rgb444"),
        "v1-pil-gray-resize64-center56": (T.Compose([T.ToPILImage(), T.Resize(64), T.CenterCrop(56), T.ToTensor(),
                                                     T.Normalize([0.5], [0.25])]), "gray"),
        "v1-png-resize(96,128)-vflip1": (T.Compose([T.ToPILImage(), T.Resize((96, 128)), T.RandomVerticalFlip(1.0),
                                                    T.ToTensor()]), "png"),
        "v1-pil-hflip1-center100": (T.Compose([T.ToPILImage(), T.RandomHorizontalFlip(1.0), T.CenterCrop(101),
                                               T.ToTensor()]), "rgb"),
        "v1-pil-resize-int-same-size": (T.Compose([T.ToPILImage(), T.Resize(160), T.ToTensor()]), "same"),
        "v1-totensor-resize256-center224-normalize": (T.Compose([T.ToTensor(), T.Resize(256), T.CenterCrop(224),
                                                                 T.Normalize(MEAN, STD)]), "rgb"),
        "v1-piltotensor-resize-convertdtype": (T.Compose([T.ToPILImage(), T.PILToTensor(), T.Resize((128, 160)),
                                                          T.ConvertImageDtype(torch.float32)]), "rgb"),
        "v2-toimage-resize256-center224-todtype-normalize": (
            v2.Compose([v2.ToImage(), v2.Resize(256), v2.CenterCrop(224), v2.ToDtype(torch.float32, scale=True),
                        v2.Normalize(MEAN, STD)]), "rgb"),
        "v2-toimage-resize(200,300)-uint8": (v2.Compose([v2.ToImage(), v2.Resize((200, 300))]), "rgb"),
        "v2-pil-resize-center-totensor": (v2.Compose([v2.ToPILImage(), v2.Resize(128, antialias=False),
                                                      v2.CenterCrop(112), v2.PILToTensor(),
                                                      v2.ToDtype(torch.float32, scale=False)]), "rgb"),
        "v2-toimage-vflip1-resize-todtype": (v2.Compose([v2.ToImage(), v2.RandomVerticalFlip(p=1.0),
                                                         v2.Resize((64, 80)), v2.ConvertImageDtype(torch.float32)]),
                                             "png"),
    }


def random_pipelines():
    """name -> (Compose, corpus): the Deep Lake docs' Compose and other random ones."""
    return {
        "docs-v1-pil-rrc224-hflip-totensor-normalize": (
            T.Compose([T.ToPILImage(), T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(),
                       T.Normalize(MEAN, STD)]), "rgb"),
        "v1-pil-rrc(160,128)-scale-ratio-vflip": (
            T.Compose([T.ToPILImage(), T.RandomResizedCrop((160, 128), scale=(0.3, 0.9), ratio=(0.5, 2.0)),
                       T.RandomVerticalFlip(0.5), T.ToTensor()]), "rgb"),
        "v1-pil-randomcrop200-hflip": (T.Compose([T.ToPILImage(), T.RandomCrop(200), T.RandomHorizontalFlip(),
                                                  T.PILToTensor()]), "rgb"),
        "v1-pil-resize256-randomcrop224-hflip": (T.Compose([T.ToPILImage(), T.Resize(256), T.RandomCrop(224),
                                                            T.RandomHorizontalFlip(), T.ToTensor()]), "rgb"),
        "v1-totensor-rrc-hflip-normalize": (T.Compose([T.ToTensor(), T.RandomResizedCrop(224),
                                                       T.RandomHorizontalFlip(), T.Normalize(MEAN, STD)]), "rgb"),
        "v2-toimage-rrc-hflip-todtype-normalize": (
            v2.Compose([v2.ToImage(), v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip(),
                        v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]), "rgb"),
        "v2-gray-randomcrop-pad-if-needed": (v2.Compose([v2.ToImage(), v2.RandomCrop(96, pad_if_needed=True),
                                                         v2.RandomHorizontalFlip(0.3), v2.RandomVerticalFlip(0.6),
                                                         v2.ToDtype(torch.float32, scale=True)]), "gray"),
    }


def unfused_pipelines():
    """name -> Compose: pipelines the recogniser must leave alone (each a plain reason)."""
    return {
        "colorjitter": T.Compose([T.ToPILImage(), T.Resize(64), T.CenterCrop(56),
                                  T.ColorJitter(brightness=(1.3, 1.3)), T.ToTensor()]),
        "lambda": T.Compose([T.ToPILImage(), T.Resize((48, 64)), T.ToTensor(), T.Lambda(lambda x: x * 2 - 1)]),
        "grayscale": T.Compose([T.ToPILImage(), T.Grayscale(), T.Resize((40, 40)), T.ToTensor()]),
        "nearest": T.Compose([T.ToPILImage(), T.Resize((48, 48), interpolation=T.InterpolationMode.NEAREST),
                              T.ToTensor()]),
        "bicubic-v2": v2.Compose([v2.ToImage(), v2.Resize((48, 48), interpolation=v2.InterpolationMode.BICUBIC)]),
        "tensor-no-antialias": T.Compose([T.ToTensor(), T.Resize((48, 48), antialias=False)]),
        "randomcrop-padding": T.Compose([T.ToPILImage(), T.RandomCrop(56, padding=4), T.ToTensor()]),
        "resize-max-size": T.Compose([T.ToPILImage(), T.Resize(48, max_size=64), T.ToTensor()]),
        "two-resizes": T.Compose([T.ToPILImage(), T.Resize(96), T.RandomResizedCrop(48), T.ToTensor()]),
        "ends-with-pil": T.Compose([T.ToPILImage(), T.Resize((48, 48))]),
        "normalize-uint8": v2.Compose([v2.ToImage(), v2.Resize((48, 48)), v2.Normalize(MEAN, STD)]),
        "resize-on-numpy": T.Compose([T.Resize((48, 48)), T.ToTensor()]),
        "todtype-float64": v2.Compose([v2.ToImage(), v2.ToDtype(torch.float64, scale=True)]),
        "subclass": T.Compose([T.ToPILImage(), type("MyResize", (T.Resize,), {})((48, 48)), T.ToTensor()]),
        "randomapply": T.Compose([T.ToPILImage(), T.RandomApply([T.RandomHorizontalFlip(1.0)], p=0.5),
                                  T.Resize((48, 48)), T.ToTensor()]),
    }


# ------------------------------------------------------------------------------------ comparison
def diff_report(got, want, std_min=None):
    """dtype / shape / type and value differences of two torch tensors (or arrays)."""
    g = got.numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    w = want.numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    rep = {"got_dtype": str(g.dtype), "want_dtype": str(w.dtype), "got_shape": list(g.shape),
           "want_shape": list(w.shape), "got_range": [float(g.min()), float(g.max())],
           "want_range": [float(w.min()), float(w.max())]}
    if g.shape == w.shape:
        d = np.abs(g.astype(np.float64) - w.astype(np.float64))
        rep.update(max_abs=float(d.max()), mean_abs=float(d.mean()), exact_fraction=float(np.mean(d == 0)))
        # the same difference in 8-bit levels (uint8: as is; [0, 1] floats: x255; normalised: x255 x std)
        level = 1.0 if g.dtype == np.uint8 else 255.0 * (std_min if std_min is not None else 1.0)
        if g.dtype != np.uint8 and w.max() > 1.5 and std_min is None:  # ToDtype(float32) without scaling
            level = 1.0
        rep.update(max_levels=float(d.max() * level), mean_levels=float(d.mean() * level))
    return rep


def _std_min(tv):
    for t in getattr(tv, "transforms", []):
        if type(t).__name__ == "Normalize":
            return float(min(t.std))
    return None


def loader_images(path, tv, batch_size=4, **kw):
    ds = dl.load(path, read_only=True)
    loader = ds.pytorch(transform={"images": tv, "labels": None}, batch_size=batch_size, shuffle=False, **kw)
    out = [b["images"] for b in loader]
    return torch.cat(out), loader._get_pipeline().columns["images"]


# -------------------------------------------------------------------------------------- checks
def check_recognise(workdir):
    """Which pipelines are fused, and the reason for each one that is not."""
    path, _ = corpus(workdir, "rgb")
    reader = dl.load(path, read_only=True)._reader("images")
    out = {}
    for name, (tv, kind) in {**deterministic_pipelines(), **random_pipelines()}.items():
        r = dl.load(corpus(workdir, kind)[0], read_only=True)._reader("images")
        out[name] = fusion.explain(tv, r)
    for name, tv in unfused_pipelines().items():
        out["unfused:" + name] = fusion.explain(tv, reader)
    # fixed by the dataset, not the pipeline: sizes that vary, channels that do not fit
    out["dataset:resize-int-on-mixed-sizes"] = fusion.explain(T.Compose([T.ToPILImage(), T.Resize(64), T.ToTensor()]),
                                                              reader)
    out["dataset:center-crop-larger-than-smallest"] = fusion.explain(
        T.Compose([T.ToPILImage(), T.CenterCrop(300), T.ToTensor()]), reader)
    gray = dl.load(corpus(workdir, "gray")[0], read_only=True)["images"]  # a Tensor works as well
    out["dataset:normalize-3-on-gray"] = fusion.explain(
        T.Compose([T.ToPILImage(), T.Resize((32, 32)), T.ToTensor(), T.Normalize(MEAN, STD)]), gray)
    mixed = dl.load(corpus(workdir, "mixed")[0], read_only=True)._reader("images")
    out["dataset:mixed-channels"] = fusion.explain(T.Compose([T.ToPILImage(), T.Resize((32, 32)), T.ToTensor()]), mixed)
    os.environ[fusion.ENV] = "0"
    out["env:off"] = fusion.explain(deterministic_pipelines()["v1-pil-resize224x224-piltotensor"][0], reader)
    del os.environ[fusion.ENV]
    return out


def check_pixels(workdir):
    """Deterministic pipelines: the fused loader's batches against torchvision on Pillow's decode."""
    out = {}
    for name, (tv, kind) in deterministic_pipelines().items():
        path, bufs = corpus(workdir, kind)
        got, col = loader_images(path, tv)
        want = torch.stack([tv(pil_decode(b)) for b in bufs])
        rep = diff_report(got, want, _std_min(tv))
        rep.update(fused=col.fused is not None, got_type=type(got).__name__, want_type=type(want).__name__,
                   sample_type=type(tv(pil_decode(bufs[0]))).__name__)
        out[name] = rep
    return out


def _replay(tv, img, box, lim, flips):
    """torchvision's own Compose on ``img`` with the random parameters our plan drew (flips come
    after the crops in these pipelines): a RandomResizedCrop gets our crop (the limits: its box
    before the resize), a RandomCrop our box in the pixels of the image it crops, a flip our flag."""
    src_h, src_w = img.shape[:2]
    x = img
    for t in tv.transforms:
        ty = type(t)
        if ty in (T.RandomResizedCrop, v2.RandomResizedCrop):
            fn = F1 if ty is T.RandomResizedCrop else F2
            top, left = int(lim[0]), int(lim[1])
            x = fn.resized_crop(x, top, left, int(lim[2] - lim[0]), int(lim[3] - lim[1]), list(t.size),
                                t.interpolation, antialias=t.antialias)
        elif ty in (T.RandomCrop, v2.RandomCrop):
            fn = F1 if ty is T.RandomCrop else F2
            ih, iw = (x.size[1], x.size[0]) if isinstance(x, Image.Image) else tuple(x.shape[-2:])
            top, left = int(round(box[0] * ih / src_h)), int(round(box[1] * iw / src_w))  # source -> resized pixels
            x = fn.crop(x, top, left, t.size[0], t.size[1])
        elif ty in (T.RandomHorizontalFlip, v2.RandomHorizontalFlip):
            x = (F1 if ty is T.RandomHorizontalFlip else F2).hflip(x) if flips[0] else x
        elif ty in (T.RandomVerticalFlip, v2.RandomVerticalFlip):
            x = (F1 if ty is T.RandomVerticalFlip else F2).vflip(x) if flips[1] else x
        else:
            x = t(x)
    return x


def check_random(workdir):
    """Random pipelines: our decode with the parameters it drew, against torchvision's Compose
    replayed with those parameters (so the pixels compare one to one)."""
    out = {}
    pool = BufferPool()
    for name, (tv, kind) in random_pipelines().items():
        path, bufs = corpus(workdir, kind)
        reader = dl.load(path, read_only=True)._reader("images")
        fi = fusion.recognise(tv).bind(reader)
        infos = K.image_infos(bufs)
        got = fi.decode(bufs, infos, np.random.default_rng(7), pool, 2)
        boxes, lims, flips, _ = fi.views(infos[:, 1:3], np.random.default_rng(7))
        want = torch.stack([_replay(tv, pil_decode(b), boxes[i], lims[i], flips[i]) for i, b in enumerate(bufs)])
        rep = diff_report(torch.from_numpy(got.copy()), want, _std_min(tv))
        rep.update(flips=flips.tolist(), boxes=np.round(boxes, 3).tolist())
        out[name] = rep
    return out


def _ks(a, b):
    """Two-sample Kolmogorov-Smirnov statistic and its asymptotic p-value."""
    a, b = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    grid = np.concatenate([a, b])
    d = float(np.max(np.abs(np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b))))
    en = math.sqrt(len(a) * len(b) / (len(a) + len(b)))
    lam = (en + 0.12 + 0.11 / en) * d
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return d, float(min(max(p, 0.0), 1.0))


def _chi2_p(counts_a, counts_b):
    """Chi-square test of homogeneity of two count vectors: (statistic, dof, p) (Wilson-Hilferty)."""
    a, b = np.asarray(counts_a, np.float64), np.asarray(counts_b, np.float64)
    keep = (a + b) > 0
    a, b = a[keep], b[keep]
    tot = a + b
    ea, eb = tot * a.sum() / tot.sum(), tot * b.sum() / tot.sum()
    stat = float(((a - ea) ** 2 / ea).sum() + ((b - eb) ** 2 / eb).sum())
    dof = max(len(a) - 1, 1)
    z = ((stat / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / math.sqrt(2 / (9 * dof))
    return stat, dof, float(0.5 * math.erfc(z / math.sqrt(2)))


def _ours_rrc(h, w, n, scale, ratio, seed):
    step = fusion._RandomResizedCrop((8, 8), scale, ratio)
    st = fusion._State(np.tile([h, w], (n, 1)))
    step.apply(st, np.random.default_rng(seed))
    lim = st.lim
    return lim[:, 2] - lim[:, 0], lim[:, 3] - lim[:, 1], lim[:, 0], lim[:, 1]


def _tv_rrc(h, w, n, scale, ratio, seed):
    torch.manual_seed(seed)
    img = torch.empty((1, h, w), dtype=torch.uint8)
    p = np.array([T.RandomResizedCrop.get_params(img, list(scale), list(ratio)) for _ in range(n)])
    return p[:, 2], p[:, 3], p[:, 0], p[:, 1]


def check_distribution(workdir):
    """Our random parameters against torchvision's own, many draws each: KS on the crop's area
    fraction, aspect ratio and relative position, chi-square on the exact (h, w) outcomes and the
    fallback rate, binomial z of flip rates; plus a negative control (another scale range) that
    the same statistics must reject."""
    n = int(os.environ.get("TV_DRAWS", "20000"))
    out = {}
    cases = {"375x500": (375, 500, (0.08, 1.0), (3 / 4, 4 / 3)), "500x375": (500, 375, (0.08, 1.0), (3 / 4, 4 / 3)),
             "60x600-fallbacks": (60, 600, (0.08, 1.0), (3 / 4, 4 / 3)),
             "40x50-scale-ratio": (40, 50, (0.3, 0.9), (0.5, 2.0))}
    for name, (h, w, scale, ratio) in cases.items():
        oh, ow, oy, ox = _ours_rrc(h, w, n, scale, ratio, seed=11)
        th, tw, ty, tx = _tv_rrc(h, w, n, scale, ratio, seed=12)
        rep = {}
        rep["area"] = _ks(oh * ow / (h * w), th * tw / (h * w))
        rep["aspect"] = _ks(np.log(ow / oh), np.log(tw / th))
        rep["top"] = _ks(oy / np.maximum(h - oh, 1), ty / np.maximum(h - th, 1))
        rep["left"] = _ks(ox / np.maximum(w - ow, 1), tx / np.maximum(w - tw, 1))
        keys = sorted(set(zip(oh.tolist(), ow.tolist())) | set(zip(th.tolist(), tw.tolist())))
        index = {k: i for i, k in enumerate(keys)}
        ca, cb = np.zeros(len(keys)), np.zeros(len(keys))
        np.add.at(ca, [index[k] for k in zip(oh.tolist(), ow.tolist())], 1)
        np.add.at(cb, [index[k] for k in zip(th.tolist(), tw.tolist())], 1)
        if len(keys) <= 400:  # discrete enough for a chi-square over exact outcomes
            rep["hw_chi2"] = _chi2_p(ca, cb)
        # centred fallback boxes: whole height or width at the limiting ratio
        fb = lambda hh, ww, yy, xx: float(np.mean((yy == (h - hh) // 2) & (xx == (w - ww) // 2) & ((hh == h) | (ww == w))))  # noqa: E731
        rep["fallback_rate"] = [fb(oh, ow, oy, ox), fb(th, tw, ty, tx)]
        out[name] = rep
    oh, ow, _, _ = _ours_rrc(375, 500, n, (0.3, 1.0), (3 / 4, 4 / 3), seed=13)
    th, tw, _, _ = _tv_rrc(375, 500, n, (0.08, 1.0), (3 / 4, 4 / 3), seed=14)
    out["negative-control-scale"] = {"area": _ks(oh * ow / (375 * 500.0), th * tw / (375 * 500.0))}
    # flips: rate of each flip over n images through the plan
    plan = fusion.Plan((fusion._Flip(0, 0.5), fusion._Flip(1, 0.25)), (), "uint8", "tensor")
    st = fusion._State(np.tile([10, 10], (n, 1)))
    rng = np.random.default_rng(15)
    for step in plan.geometry:
        step.apply(st, rng)
    rates = st.flip.mean(axis=0)
    out["flips"] = {"rates": rates.tolist(),
                    "z": [float((rates[0] - 0.5) / math.sqrt(0.25 / n)), float((rates[1] - 0.25) / math.sqrt(0.1875 / n))]}
    # RandomCrop offsets: uniform over every position, as torch.randint gives them
    st = fusion._State(np.tile([40, 50], (n, 1)))
    fusion._RandomCrop((30, 30)).apply(st, np.random.default_rng(16))
    torch.manual_seed(17)
    tvp = np.array([T.RandomCrop.get_params(torch.empty((1, 40, 50)), (30, 30))[:2] for _ in range(n)])
    out["randomcrop"] = {"top": _chi2_p(np.bincount(st.lim[:, 0], minlength=11), np.bincount(tvp[:, 0], minlength=11)),
                         "left": _chi2_p(np.bincount(st.lim[:, 1], minlength=21), np.bincount(tvp[:, 1], minlength=21))}
    return out


def check_unfused(workdir):
    """Pipelines outside the fused set run per sample, as before: torchvision's output exactly."""
    path, bufs = corpus(workdir, "rgb")
    out = {}
    for name in ("colorjitter", "lambda", "grayscale", "nearest", "tensor-no-antialias"):
        tv = unfused_pipelines()[name]
        got, col = loader_images(path, tv, batch_size=3)
        want = torch.stack([tv(pil_decode(b)) for b in bufs])
        out[name] = {"fused": col.fused is not None, "runs_per_sample": col.transform is tv,
                     "equal": bool(got.shape == want.shape and torch.equal(got, want)),
                     "shape": list(got.shape), "dtype": str(got.dtype)}
    return out


def check_loader(workdir):
    """The docs' Compose through ds.pytorch() and the chain: fused or not the same kind of batch;
    seeded runs repeat; a resume repeats the rest; workers change nothing; collate_fn and
    batch_size=None see torchvision's per-sample types; fusion off (the env var) runs per sample."""
    path, bufs = corpus(workdir, "same")
    tv = random_pipelines()["docs-v1-pil-rrc224-hflip-totensor-normalize"][0]
    tv2 = random_pipelines()["v2-toimage-rrc-hflip-todtype-normalize"][0]
    ds = dl.load(path, read_only=True)
    out = {}

    def epoch(loader):
        return [(b["images"].clone(), b["labels"].clone()) for b in loader]

    dl.random.seed(5)
    fused_loader = ds.pytorch(transform={"images": tv, "labels": None}, batch_size=8, shuffle=True)
    a = epoch(fused_loader)
    dl.random.seed(5)
    b = epoch(ds.pytorch(transform={"images": tv, "labels": None}, batch_size=8, shuffle=True, num_workers=2))
    out["fused"] = fused_loader._get_pipeline().columns["images"].fused is not None
    out["batch"] = {"type": type(a[0][0]).__name__, "dtype": str(a[0][0].dtype), "shape": list(a[0][0].shape),
                    "labels": [str(a[0][1].dtype), list(a[0][1].shape)]}
    out["seeded_repeat_with_workers"] = all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b))
    dl.random.seed(6)
    c = epoch(ds.pytorch(transform={"images": tv, "labels": None}, batch_size=8, shuffle=True))
    out["other_seed_differs"] = not all(torch.equal(x[0], y[0]) for x, y in zip(a, c))
    # resume after the first batch: the rest is what the uninterrupted run gave
    dl.random.seed(5)
    chain = ds.dataloader().transform({"images": tv, "labels": None}).batch(8).shuffle()
    full = [bb["images"].clone() for bb in chain.pytorch()]
    dl.random.seed(5)
    first = chain.pytorch()
    it = iter(first)
    next(it)
    state = first.state_dict()
    dl.random.seed(99)
    resumed = chain.pytorch()
    resumed.load_state_dict(state)
    rest = [bb["images"].clone() for bb in resumed]
    out["chain_fused"] = first._get_pipeline().columns["images"].fused is not None
    out["resume_equal"] = len(rest) == len(full) - 1 and all(torch.equal(x, y) for x, y in zip(rest, full[1:]))
    # unfused (the env var): the same kind of batch, made per sample by torchvision
    os.environ[fusion.ENV] = "0"
    try:
        unf_loader = ds.pytorch(transform={"images": tv, "labels": None}, batch_size=8)
        u = epoch(unf_loader)
        out["env_off_fused"] = unf_loader._get_pipeline().columns["images"].fused is not None
    finally:
        del os.environ[fusion.ENV]
    out["unfused_batch"] = {"type": type(u[0][0]).__name__, "dtype": str(u[0][0].dtype), "shape": list(u[0][0].shape),
                            "labels": [str(u[0][1].dtype), list(u[0][1].shape)]}
    # values: the fused batches are torchvision's range (normalised ImageNet statistics)
    allf = torch.cat([x[0] for x in a])
    out["range"] = [float(allf.min()), float(allf.max())]
    out["range_limits"] = [min(-m / s for m, s in zip(MEAN, STD)), max((1 - m) / s for m, s in zip(MEAN, STD))]
    # per-sample forms: a collate_fn and batch_size=None see torch tensors (v2: tv_tensors.Image)
    seen = {}

    def collate(samples):
        seen.setdefault("types", [type(s["images"]).__name__ for s in samples])
        return torch.stack([s["images"] for s in samples])

    coll = ds.pytorch(transform={"images": tv2, "labels": None}, batch_size=4, collate_fn=collate, num_workers=0)
    cb = next(iter(coll))
    out["collate"] = {"fused": coll._get_pipeline().columns["images"].fused is not None, "types": seen["types"],
                      "batch": [type(cb).__name__, list(cb.shape)],
                      "torchvision_sample_type": type(tv2(pil_decode(bufs[0]))).__name__}
    one = ds.pytorch(transform={"images": tv, "labels": None}, batch_size=None)
    s = next(iter(one))
    out["unbatched"] = {"fused": one._get_pipeline().columns["images"].fused is not None,
                        "type": type(s["images"]).__name__, "shape": list(s["images"].shape)}
    # .numpy() terminal: not fused (the per-sample path's batch is what numpy users get)
    npl = ds.dataloader().transform({"images": tv, "labels": None}).batch(4).numpy()
    next(iter(npl))
    out["numpy_terminal_fused"] = npl._get_pipeline().columns["images"].fused is not None
    return out


def check_errors(workdir):
    """Bad samples through the fused path: the error names the tensor and the exact row and keeps
    libjpeg's reason; the image pixel limit refuses from the header; a dataset whose meta lies about
    channels is refused by row."""
    import shutil

    from deeplake_loader.errors import DecodeError
    from tests.common import damage

    tv = deterministic_pipelines()["v1-pil-resize256-center224-normalize"][0]
    src, _ = corpus(workdir, "same")
    out = {}

    def first_error(path, **kw):
        ds = dl.load(path, read_only=True)
        loader = ds.pytorch(transform={"images": tv, "labels": None}, batch_size=8, num_workers=0, **kw)
        fused = loader._get_pipeline().columns["images"].fused is not None
        try:
            for _ in loader:
                pass
        except DecodeError as e:
            return {"fused": fused, "type": type(e).__name__, "message": str(e), "tensor": e.tensor, "index": e.index}
        return {"fused": fused, "type": None}

    bad = str(Path(workdir) / "ds-bad-row")
    shutil.copytree(src, bad, dirs_exist_ok=True)
    payload, reason = damage.libjpeg_error(dl.load(bad, read_only=True).images[13].tobytes())
    damage.replace_samples(bad, "images", {13: payload})
    out["libjpeg_error"] = dict(first_error(bad), reason=reason)
    limit = dl.get_max_image_pixels()
    dl.set_max_image_pixels(100 * 100)
    try:
        out["pixel_limit"] = first_error(src)
    finally:
        dl.set_max_image_pixels(limit)
    gray = str(Path(workdir) / "ds-gray-in-rgb")
    shutil.copytree(src, gray, dirs_exist_ok=True)
    damage.replace_samples(gray, "images", {6: make_jpeg(375, 500, mode="L", seed=1)})  # meta still says 3
    out["channels_lie"] = first_error(gray)
    return out


CHECKS = {"errors": check_errors, "recognise": check_recognise, "pixels": check_pixels, "random": check_random,
          "distribution": check_distribution, "unfused": check_unfused, "loader": check_loader}


def main(argv):
    check, workdir = argv[0], argv[1]
    torch.set_num_threads(2)
    result = CHECKS[check](workdir)
    with open(os.environ["TV_RESULT"], "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    main(sys.argv[1:])
