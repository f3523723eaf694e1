"""Generate the Deep Lake 3 test vectors of READER_SKETCH §3 with REAL deeplake 3.9.52.

RUN THIS ONLY INSIDE THE deeplake 3.9.52 SIDE VENV (``tests/common/dl3.py`` does it); the main test
process never imports it.

    python dl3_vectors.py OUTDIR [VECTOR ...]

For every vector it writes ``OUTDIR/<vector>/data/`` (the dataset, written by deeplake),
optionally ``OUTDIR/<vector>/files/`` (real image files appended with ``deeplake.read``), and
``OUTDIR/<vector>/expected.json`` + ``OUTDIR/<vector>/<view>.npz``: the values that deeplake itself
reads back after re-opening the dataset from disk (one *view* per HEAD / branch / commit):

expected.json = {"vector": name, "views": [{"id", "load": {} | {"branch": b} | {"commit": c},
                 "len", "tensors": [visible names in deeplake's order], "npz": file,
                 "meta": {name: {"index", "htype", "dtype", "shape", "length", "sample_compression",
                                 "chunk_compression", "class_names"?, "kind", "uniform",
                                 "values"? (text/json/list/tag), "text"? (class_label)}}}]}

npz keys: ``t<index>/<row>`` = ``tensor[row].numpy()`` for array kinds (ragged samples stay separate
arrays) and ``t<index>/all`` = ``tensor.numpy()`` when deeplake returns a single array.
json values: ndarrays become {"__ndarray__": nested list, "dtype": str, "shape": list}.

Values encode their row index wherever the htype allows it. Fixed seed: everything is reproducible.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
os.environ.setdefault("BUGGER_OFF", "true")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import deeplake  # noqa: E402

SEED = 20261124
VECTORS: dict = {}


def vector(fn):
    VECTORS[fn.__name__[2:]] = fn  # functions are named v_<vector>
    return fn


def new_ds(root: Path):
    return deeplake.empty(str(root / "data"), overwrite=True, verbose=False)


# --------------------------------------------------------------------------------------------------
# recording what deeplake reads back


def _jsonable(v):
    if isinstance(v, np.ndarray):
        if v.dtype == object:
            return [_jsonable(x) for x in v.tolist()]
        return {"__ndarray__": v.tolist(), "dtype": v.dtype.str, "shape": list(v.shape)}
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


TEXTLIKE = ("text", "json", "list", "tag")


def dump_view(root: Path, view_id: str, load: dict) -> dict:
    ds = deeplake.load(str(root / "data"), read_only=True, verbose=False)
    if "branch" in load:
        ds.checkout(load["branch"])
    if "commit" in load:
        ds.checkout(load["commit"])
    names = list(ds.tensors)
    arrays = {}
    meta = {}
    for j, name in enumerate(names):
        t = ds[name]
        htype = t.htype
        m = {
            "index": j,
            "htype": htype,
            "dtype": None if t.dtype is None else np.dtype(t.dtype).str,
            "shape": [None if s is None else int(s) for s in t.shape],
            "length": len(t),
            "sample_compression": t.meta.sample_compression,
            "chunk_compression": t.meta.chunk_compression,
        }
        if htype == "class_label":
            m["class_names"] = list(t.info.class_names)
        if htype in TEXTLIKE:
            m["kind"] = htype
            m["values"] = [_jsonable(t[i].data()["value"]) for i in range(len(t))]
        else:
            m["kind"] = "array"
            for i in range(len(t)):
                arrays[f"t{j}/{i}"] = t[i].numpy()
            if htype == "class_label":
                m["text"] = [list(t[i].data().get("text", [])) for i in range(len(t))]
        try:
            whole = t.numpy()
            m["uniform"] = True
            if m["kind"] == "array":
                arrays[f"t{j}/all"] = whole
        except Exception:  # deeplake refuses ragged tensors without aslist=True
            m["uniform"] = False
        meta[name] = m
    npz = f"{view_id}.npz"
    np.savez_compressed(root / npz, **arrays)
    return {"id": view_id, "load": load, "len": len(ds), "tensors": names, "npz": npz, "meta": meta}


# --------------------------------------------------------------------------------------------------
# helpers for data that encodes its row index


def fixed(i, shape, dtype):
    n = int(np.prod(shape))
    a = (np.arange(n, dtype=np.int64) + 37 * i) % 120 - (0 if np.dtype(dtype).kind in "ub" else 60)
    if np.dtype(dtype) == bool:
        return ((np.arange(n) + i) % 3 == 0).reshape(shape)
    a = a.astype(dtype).reshape(shape)
    if np.dtype(dtype).kind == "f":
        a = a + np.asarray(0.25 * i, dtype=dtype)
    return a


def noise_image(rng, h, w, c=3):
    shape = (h, w) if c is None else (h, w, c)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def smooth_image(i, h, w, c=3):
    y, x = np.mgrid[0:h, 0:w]
    chans = [(x * 3 + y * 2 + 11 * i + 40 * k) % 256 for k in range(c or 1)]
    a = np.stack(chans, axis=-1).astype(np.uint8)
    return a[..., 0] if c is None else a


# --------------------------------------------------------------------------------------------------
# the vectors (numbers refer to READER_SKETCH §3)


@vector
def v_generic_fixed(root, rng):  # 1
    ds = new_ds(root)
    with ds:
        for dt in ["int8", "uint8", "int16", "int32", "int64", "float16", "float32", "float64", "bool"]:
            ds.create_tensor(f"f_{dt}", dtype=dt)
            ds[f"f_{dt}"].extend([fixed(i, (3, 4), dt) for i in range(12)])
        ds.create_tensor("sc_int")
        ds.sc_int.extend([i * 3 - 5 for i in range(12)])
        ds.create_tensor("sc_float")
        for i in range(12):
            ds.sc_float.append(i / 4.0)
        ds.create_tensor("sc_bool", dtype="bool")
        ds.sc_bool.extend([bool(i % 2) for i in range(12)])
        ds.create_tensor("f_u16_1d", dtype="uint16")
        ds.f_u16_1d.extend(np.stack([fixed(i, (5,), "uint16") for i in range(12)]))
    return [("head", {})]


@vector
def v_generic_ragged(root, rng):  # 2
    ds = new_ds(root)
    with ds:
        ds.create_tensor("r2", dtype="float32")
        ds.r2.append(None)  # None at the start
        for i in range(1, 10):
            ds.r2.append(fixed(i, (i % 4, 4), "float32"))  # includes (0, 4)
        ds.r2.append(None)  # None in the middle
        ds.r2.extend([fixed(i, (2, i), "float32") for i in range(11, 14)])
        ds.create_tensor("r1", dtype="int16")
        ds.r1.extend([fixed(i, (i % 5,), "int16") for i in range(14)])
        ds.create_tensor("r3", dtype="uint8")
        for i in range(14):
            ds.r3.append(None if i == 6 else fixed(i, (1 + i % 3, 2, 1 + i % 2), "uint8"))
    return [("head", {})]


@vector
def v_multi_chunk(root, rng):  # 3 (small chunks)
    ds = new_ds(root)
    with ds:
        ds.create_tensor("fx", dtype="int32", max_chunk_size=2000)
        ds.fx.extend(np.stack([fixed(i, (10,), "int32") for i in range(400)]))
        ds.create_tensor("rg", dtype="float64", max_chunk_size=2000)
        ds.rg.extend([fixed(i, (1 + (i * 7) % 30,), "float64") for i in range(400)])
        ds.create_tensor("tx", htype="text", max_chunk_size=2000)
        ds.tx.extend([f"row {i} " + "x" * (i % 50) for i in range(400)])
        ds.create_tensor("one", dtype="int64", max_chunk_size=2000)
        for i in range(400):  # append one by one: a different writer path than extend
            ds.one.append(np.array([i, -i], dtype=np.int64))
    return [("head", {})]


@vector
def v_multi_chunk_default(root, rng):  # 3 (default 16 MB chunks, 64x64x3 images)
    ds = new_ds(root)
    n = 1200
    base = smooth_image(0, 64, 64)
    with ds:
        ds.create_tensor("img", htype="image", sample_compression=None, dtype="uint8")
        for s in range(0, n, 200):
            ds.img.extend(np.stack([(base + i).astype(np.uint8) for i in range(s, s + 200)]))
        ds.create_tensor("label", dtype="int32")
        ds.label.extend(np.arange(n, dtype=np.int32))
    return [("head", {})]


def _images(root, rng, compression, files_fmt=None):
    ds = new_ds(root)
    files = root / "files"
    files.mkdir(exist_ok=True)
    with ds:
        ds.create_tensor("img", htype="image", sample_compression=compression)
        for i, (h, w) in enumerate([(16, 16), (17, 23), (31, 8), (1, 1), (40, 33)]):
            ds.img.append(noise_image(rng, h, w) if i % 2 else smooth_image(i, h, w))
        ds.img.append(smooth_image(5, 12, 19, c=None))  # grayscale 2-D → (H, W, 1)
        ds.img.append(None)  # empty image
        if files_fmt:
            for i, (h, w) in enumerate([(20, 30), (9, 14)]):
                p = files / f"real_{i}.{files_fmt}"
                im = Image.fromarray(smooth_image(20 + i, h, w))
                if files_fmt == "jpg":
                    exif = Image.Exif()
                    exif[0x010F] = "deeplake_loader tests"
                    exif[0x0110] = f"row {i}"
                    im.save(p, quality=90, exif=exif)
                else:
                    im.save(p)
                ds.img.append(deeplake.read(str(p)))
        ds.img.append(noise_image(rng, 8, 6))
        ds.create_tensor("gray", htype="image.gray", sample_compression=compression)
        ds.gray.extend([smooth_image(i, 10 + i, 7, c=None) for i in range(4)])
    return [("head", {})]


@vector
def v_image_jpeg(root, rng):  # 4
    return _images(root, rng, "jpeg", "jpg")


@vector
def v_image_png(root, rng):  # 4
    return _images(root, rng, "png", "png")


@vector
def v_image_other(root, rng):  # 5
    ds = new_ds(root)
    with ds:
        for c in ["webp", "bmp", "tiff"]:
            ds.create_tensor(c, htype="image", sample_compression=c)
            ds[c].extend([smooth_image(i, 9 + i, 13 - i) for i in range(4)])
            ds[c].append(noise_image(rng, 5, 7))
    return [("head", {})]


@vector
def v_lz4(root, rng):  # 6
    ds = new_ds(root)
    with ds:
        for mode in ["sample", "chunk"]:
            kw = {f"{mode}_compression": "lz4"}
            ds.create_tensor(f"{mode}_fixed", dtype="float32", **kw)
            ds[f"{mode}_fixed"].extend(np.stack([fixed(i, (4, 6), "float32") for i in range(20)]))
            ds.create_tensor(f"{mode}_ragged", dtype="uint16", **kw)
            ds[f"{mode}_ragged"].extend([fixed(i, (i % 6, 3), "uint16") for i in range(20)])
            ds[f"{mode}_ragged"].append(None)
            ds.create_tensor(f"{mode}_text", htype="text", **kw)
            ds[f"{mode}_text"].extend(["", "same", "same", "é😀 " * 3] + [f"t{i}" * i for i in range(16)])
            ds.create_tensor(f"{mode}_json", htype="json", **kw)
            ds[f"{mode}_json"].extend([{"i": i, "s": "v" * i} for i in range(20)])
            ds.create_tensor(f"{mode}_small", dtype="int32", max_chunk_size=2000, **kw)
            ds[f"{mode}_small"].extend(np.stack([fixed(i, (8,), "int32") for i in range(300)]))
    return [("head", {})]


def _chunk_images(root, rng, codec):
    ds = new_ds(root)
    with ds:
        ds.create_tensor("img", htype="image", chunk_compression=codec)
        sizes = [(10, 12), (7, 20), None, (13, 5), (1, 1), None, (12, 12), (3, 30)]
        for i, hw in enumerate(sizes):
            ds.img.append(None if hw is None else smooth_image(i, *hw))
        ds.create_tensor("gray", htype="image.gray", chunk_compression=codec)
        ds.gray.extend([smooth_image(i, 4 + i, 6 + 2 * i, c=None) for i in range(5)])
        ds.create_tensor("many", htype="image", chunk_compression=codec, max_chunk_size=4000)
        ds.many.extend([smooth_image(i, 8 + i % 5, 8 + i % 3) for i in range(40)])
        ds.create_tensor("empties", htype="image", chunk_compression=codec)
        ds.empties.extend([None, None, smooth_image(2, 3, 2)])
    return [("head", {})]


@vector
def v_png_chunk(root, rng):  # 7
    return _chunk_images(root, rng, "png")


@vector
def v_jpeg_chunk(root, rng):  # 7
    return _chunk_images(root, rng, "jpeg")


@vector
def v_text(root, rng):  # 8
    ds = new_ds(root)
    with ds:
        ds.create_tensor("t", htype="text")
        ds.t.extend(["", "hello", "ascii 0123 !@#", "é à ü", "emoji 😀🚀", "", "a\nb\tc", None])
        ds.t.append("row 8")
        ds.create_tensor("long", htype="text", max_chunk_size=6000)
        for i in range(10):  # strings bigger than a chunk: several chunks
            ds.long.append(f"{i:04d}" + ("abcdefghij" * (200 + 150 * i)))
        ds.create_tensor("one", htype="text")
        for i in range(30):
            ds.one.append(f"appended one by one {i}")
    return [("head", {})]


@vector
def v_json_list_tag(root, rng):  # 9
    ds = new_ds(root)
    with ds:
        ds.create_tensor("j", htype="json")
        ds.j.extend([
            {"row": 0, "nested": {"a": [1, 2, {"b": None}], "s": "é"}},
            {},
            None,
            {"arr": np.arange(6, dtype=np.float32).reshape(2, 3), "row": 3},
            {"list": [1.5, True, "x"], "row": 4},
            [1, 2, 3],
        ])
        ds.create_tensor("l", htype="list")
        ds.l.extend([[0, "a"], [], None, [3, 3.5, "row 3"], ["row", 4, [1, 2]]])
        ds.create_tensor("tg", htype="tag")
        ds.tg.extend([["cat", "dog"], ["row1"], ["a", "b", "c"], ["x"]])
    return [("head", {})]


@vector
def v_class_label(root, rng):  # 10
    ds = new_ds(root)
    with ds:
        ds.create_tensor("c", htype="class_label", class_names=["zero", "one", "two"])
        ds.c.extend([0, 1, 2, 1, 0])
        ds.c.append("three")  # string label extends class_names
        ds.c.extend(["one", "four"])
        ds.create_tensor("multi", htype="class_label", class_names=["a", "b", "c"])
        ds.multi.extend([[0, 2], [1], [], [0, 1, 2], [2]])
        ds.multi.append(["b", "d"])
        ds.multi.extend([[0], [1], [2]])
        ds.create_tensor("nonames", htype="class_label")
        ds.nonames.extend(np.arange(8, dtype=np.uint32) % 3)
    return [("head", {})]


@vector
def v_htypes(root, rng):  # 11
    ds = new_ds(root)
    n = 6
    with ds:
        ds.create_tensor("bbox", htype="bbox", coords={"type": "pixel", "mode": "LTWH"})
        ds.bbox.extend([fixed(i, (1 + i % 3, 4), "float32") for i in range(n)])
        ds.create_tensor("bbox3d", htype="bbox.3d", coords={"mode": "center"})
        ds.bbox3d.extend([fixed(i, (2, 8), "float32") for i in range(n)])
        ds.create_tensor("mask", htype="binary_mask")
        ds.mask.extend([fixed(i, (5, 6, 1 + i % 2), "bool") for i in range(n)])
        ds.create_tensor("mask_lz4", htype="binary_mask", sample_compression="lz4")
        ds.mask_lz4.extend([fixed(i, (7, 5, 2), "bool") for i in range(n)])
        ds.create_tensor("seg", htype="segment_mask", class_names=["bg", "fg"])
        ds.seg.extend([fixed(i, (6, 7), "uint32") % 2 for i in range(n)])
        ds.create_tensor("kp", htype="keypoints_coco", keypoints=["nose", "eye"], connections=[[0, 1]])
        ds.kp.extend([fixed(i, (6, 1 + i % 2), "int32") for i in range(n)])
        ds.create_tensor("pt", htype="point")
        ds.pt.extend([fixed(i, (i % 3 + 1, 2), "int32") for i in range(n)])
        ds.create_tensor("emb", htype="embedding")
        ds.emb.extend(np.stack([fixed(i, (16,), "float32") for i in range(n)]))
        ds.create_tensor("inst", htype="instance_label")
        ds.inst.extend([fixed(i, (1 + i % 4,), "uint32") for i in range(n)])
    return [("head", {})]


@vector
def v_tiled(root, rng):  # 12 (small thresholds, ragged edge tiles, tiled sample in the middle)
    ds = new_ds(root)
    with ds:
        ds.create_tensor("g", dtype="uint8", tiling_threshold=2000)
        ds.g.append(fixed(0, (10, 10), "uint8"))
        ds.g.append(fixed(1, (97, 61), "uint8"))  # tiled, edges not divisible
        ds.g.append(fixed(2, (5, 3), "uint8"))
        ds.g.append(fixed(3, (45, 80), "uint8"))  # tiled
        ds.g.append(fixed(4, (2, 2), "uint8"))
        ds.create_tensor("f3", dtype="float32", tiling_threshold=4000)
        ds.f3.extend([fixed(0, (3, 4, 2), "float32"), fixed(1, (30, 21, 3), "float32"),
                      fixed(2, (1, 1, 1), "float32")])
        ds.create_tensor("png", htype="image", sample_compression="png", tiling_threshold=3000)
        ds.png.append(smooth_image(0, 8, 8))
        ds.png.append(noise_image(rng, 70, 53))  # noise does not compress: tiled
        ds.png.append(smooth_image(2, 9, 4))
        ds.create_tensor("lz", dtype="int16", sample_compression="lz4", tiling_threshold=1500)
        ds.lz.append(fixed(0, (4, 1), "int16"))
        ds.lz.append(rng.integers(-30000, 30000, size=(41, 39), dtype=np.int16))
        ds.lz.append(fixed(2, (3, 2), "int16"))
    return [("head", {})]


@vector
def v_tiled_default(root, rng):  # 12 (default 16 MB threshold, one 4500x4000 sample)
    ds = new_ds(root)
    with ds:
        ds.create_tensor("big", dtype="uint8")
        ds.big.append(fixed(0, (3, 3), "uint8"))
        y = np.arange(4500, dtype=np.uint16)[:, None]
        x = np.arange(4000, dtype=np.uint16)[None, :]
        ds.big.append(((y * 7 + x * 3) % 251).astype(np.uint8))
        ds.big.append(fixed(2, (3, 3), "uint8"))
    return [("head", {})]


@vector
def v_vc_linear(root, rng):  # 13
    ds = new_ds(root)
    views = []
    ds.create_tensor("x", dtype="int32")
    ds.create_tensor("t", htype="text")
    ds.x.extend([np.full((3,), i, np.int32) for i in range(5)])
    ds.t.extend([f"first {i}" for i in range(5)])
    c1 = ds.commit("first")
    views.append(("c1", {"commit": c1}))
    ds.x.extend([np.full((3,), i, np.int32) for i in range(5, 8)])  # copy-on-write of last chunk
    ds.t.extend([f"second {i}" for i in range(5, 8)])
    ds.x[0] = np.full((3,), 100, np.int32)
    ds.t[0] = "updated 0"
    ds.x.pop()
    ds.t.pop()
    c2 = ds.commit("second")
    views.append(("c2", {"commit": c2}))
    ds.x.append(np.full((3,), 8, np.int32))
    ds.t.append("third 8")
    ds.flush()
    views.append(("head", {}))
    views.append(("main", {"branch": "main"}))
    return views


@vector
def v_vc_branches(root, rng):  # 14
    ds = new_ds(root)
    ds.create_tensor("x", dtype="int64")
    ds.create_tensor("img", htype="image", sample_compression="png")
    ds.x.extend(np.arange(4, dtype=np.int64))
    ds.img.extend([smooth_image(i, 6, 5) for i in range(4)])
    base = ds.commit("base")
    ds.checkout("alt", create=True)
    ds.x.extend(np.arange(100, 103, dtype=np.int64))
    ds.img.extend([smooth_image(100 + i, 4, 7) for i in range(3)])
    ds.x[1] = np.int64(-1)
    alt1 = ds.commit("alt 1")
    ds.x.append(np.int64(200))
    ds.img.append(smooth_image(200, 3, 3))
    ds.flush()
    ds.checkout("main")
    ds.x.append(np.int64(4))
    ds.img.append(smooth_image(4, 6, 5))
    ds.flush()
    return [("head", {}), ("main", {"branch": "main"}), ("alt", {"branch": "alt"}),
            ("base", {"commit": base}), ("alt1", {"commit": alt1})]


@vector
def v_vc_rename_delete(root, rng):  # 15
    ds = new_ds(root)
    ds.create_tensor("a", dtype="int32")
    ds.create_tensor("b", dtype="float32")
    ds.create_tensor("c", htype="text")
    ds.a.extend(np.arange(5, dtype=np.int32))
    ds.b.extend(np.arange(5, dtype=np.float32) / 2)
    ds.c.extend([f"c{i}" for i in range(5)])
    c1 = ds.commit("one")
    ds.rename_tensor("b", "bb")  # name bb, key b
    ds.bb.append(np.float32(9.5))
    ds.a.append(np.int32(5))
    ds.c.append("c5")
    c2 = ds.commit("renamed")
    ds.delete_tensor("a")
    ds.create_tensor("b", dtype="int16")  # name b, key b_xxxx (key b is taken)
    ds.b.extend(np.arange(6, dtype=np.int16) * 3)
    ds.create_tensor("a", htype="text")  # a again, new htype
    ds.a.extend([f"new a {i}" for i in range(6)])
    c3 = ds.commit("deleted and re-created")
    ds.bb.append(np.float32(10.5))
    ds.flush()
    return [("c1", {"commit": c1}), ("c2", {"commit": c2}), ("c3", {"commit": c3}), ("head", {})]


@vector
def v_vc_merge(root, rng):  # 16: merge writes "name:commit" chunk_set entries
    ds = new_ds(root)
    ds.create_tensor("x", dtype="int32")
    ds.create_tensor("t", htype="text")
    ds.x.extend(np.arange(4, dtype=np.int32))
    ds.t.extend([f"base {i}" for i in range(4)])
    base = ds.commit("base")
    ds.checkout("alt", create=True)
    ds.x.extend(np.arange(10, 13, dtype=np.int32))
    ds.t.extend([f"alt {i}" for i in range(10, 13)])
    ds.x[0] = np.int32(-5)
    alt1 = ds.commit("alt 1")
    ds.checkout("main")
    ds.x.append(np.int32(4))
    ds.t.append("main 4")
    main1 = ds.commit("main 1")
    ds.merge("alt")
    merged = ds.commit_id
    ds.flush()
    return [("head", {}), ("alt", {"branch": "alt"}), ("base", {"commit": base}), ("alt1", {"commit": alt1}),
            ("main1", {"commit": main1}), ("merged", {"commit": merged})]


@vector
def v_sequence(root, rng):  # 18 (item shapes uniform inside each sequence, so t[i].numpy() is an array)
    ds = new_ds(root)
    with ds:
        ds.create_tensor("seq", htype="sequence[generic]", dtype="int16")
        ds.seq.extend([[fixed(10 * s + k, (3,), "int16") for k in range(n)] for s, n in enumerate((2, 1, 3, 2))])
        ds.create_tensor("seqimg", htype="sequence[image]", sample_compression="png")
        ds.seqimg.extend([[smooth_image(10 * s + k, 4, 5) for k in range(n)] for s, n in enumerate((2, 1, 3, 1))])
        ds.create_tensor("seqlab", htype="sequence[class_label]", class_names=["a", "b", "c"])
        ds.seqlab.extend([[0, 1], [2], [1, 1, 0], [2, 0]])
    return [("head", {})]


@vector
def v_link(root, rng):  # 19: link[image] to local files (absolute paths inside the vector folder)
    ds = new_ds(root)
    files = root / "files"
    files.mkdir(exist_ok=True)
    with ds:
        ds.create_tensor("lk", htype="link[image]", sample_compression="png")
        for i in range(3):
            p = files / f"link_{i}.png"
            Image.fromarray(smooth_image(i, 4 + i, 5)).save(p)
            ds.lk.append(deeplake.link(str(p)))
        ds.create_tensor("x", dtype="int32")
        ds.x.extend(np.arange(3, dtype=np.int32))
    return [("head", {})]


@vector
def v_groups(root, rng):  # 17
    ds = new_ds(root)
    with ds:
        ds.create_group("a")
        ds.create_tensor("a/b/c", htype="image", sample_compression="png")
        ds["a/b/c"].extend([smooth_image(i, 5, 4 + i) for i in range(4)])
        ds.create_tensor("a/y", htype="class_label", class_names=["n", "p"])
        ds["a/y"].extend([0, 1, 1, 0])
        ds.create_tensor("a/b/t", htype="text")
        ds["a/b/t"].extend([f"g{i}" for i in range(4)])
        ds.create_tensor("top", dtype="int8")
        ds.top.extend(np.arange(4, dtype=np.int8))
    return [("head", {})]


@vector
def v_empty(root, rng):  # 21: no tensors at all
    new_ds(root).flush()
    return [("head", {})]


@vector
def v_zero_samples(root, rng):  # 21: tensors with no samples (with and without dtype)
    ds = new_ds(root)
    with ds:
        ds.create_tensor("nodtype")
        ds.create_tensor("f", dtype="float32")
        ds.create_tensor("t", htype="text")
        ds.create_tensor("img", htype="image", sample_compression="jpeg")
    return [("head", {})]


@vector
def v_unequal(root, rng):  # 21: unequal lengths, len(ds) = min
    ds = new_ds(root)
    with ds:
        ds.create_tensor("long", dtype="int32")
        ds.long.extend(np.arange(9, dtype=np.int32))
        ds.create_tensor("short", htype="text")
        ds.short.extend(["a", "b", "c"])
        ds.create_tensor("mid", dtype="uint8")
        ds.mid.extend([fixed(i, (2,), "uint8") for i in range(5)])
    return [("head", {})]


# --------------------------------------------------------------------------------------------------


def generate(out: Path, names) -> dict:
    timings = {}
    for name in names:
        t0 = time.perf_counter()
        root = out / name
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        rng = np.random.default_rng([SEED, sum(map(ord, name))])
        views = VECTORS[name](root, rng)
        expected = {"vector": name, "views": [dump_view(root, vid, load) for vid, load in views]}
        (root / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True))
        timings[name] = round(time.perf_counter() - t0, 3)
    return timings


def main(argv):
    out = Path(argv[1])
    names = argv[2:] or list(VECTORS)
    unknown = [n for n in names if n not in VECTORS]
    if unknown:
        raise SystemExit(f"unknown vectors {unknown}; known: {sorted(VECTORS)}")
    out.mkdir(parents=True, exist_ok=True)
    timings = generate(out, names)
    result = {"vectors": names, "timings": timings, "deeplake": deeplake.__version__}
    (out / "manifest.json").write_text(json.dumps(result, indent=1))
    res = os.environ.get("DL3_RESULT")
    if res:
        Path(res).write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv)
