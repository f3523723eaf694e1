"""Random damage to chunk and index files, reproducible (fixed seeds): every read path, the
dataloader included, either returns the original values or raises a DeepLakeLoaderError
(CorruptDatasetError / DecodeError) naming the tensor — never another exception, never a crash, and
never other values where the format can tell."""

import itertools

import numpy as np
import pytest

import deeplake_loader as dl
from deeplake_loader.errors import DeepLakeLoaderError

TRIALS = 60
_names = (f"mem://h1-corrupt-{i}" for i in itertools.count())


def _build(kind):
    rng = np.random.default_rng(0)
    ds = dl.empty(next(_names))
    if kind == "raw":
        ds.create_tensor("t", dtype="int16", max_chunk_size=400)
        ds.t.extend([rng.integers(0, 99, (int(rng.integers(0, 6)), 3), dtype=np.int16) for _ in range(40)])
    elif kind == "lz4":
        ds.create_tensor("t", dtype="float32", chunk_compression="lz4")
        ds.t.extend([rng.random((4, 2), dtype=np.float32) for _ in range(30)])
    elif kind == "png":
        ds.create_tensor("t", htype="image", sample_compression="png")
        ds.t.extend([rng.integers(0, 255, (6, 5, 3), dtype=np.uint8) for _ in range(8)])
    elif kind == "jpeg":
        ds.create_tensor("t", htype="image", sample_compression="jpeg")
        ds.t.extend([rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(8)])
    elif kind == "text":
        ds.create_tensor("t", htype="json")
        ds.t.extend([{"k": i, "v": [i] * (i % 4)} for i in range(25)])
    elif kind == "canvas":
        ds.create_tensor("t", htype="image", chunk_compression="png")
        ds.t.extend([rng.integers(0, 255, (5, 3 + i % 3, 3), dtype=np.uint8) for i in range(9)])
    elif kind == "tiled":
        ds.create_tensor("t", dtype="uint8", max_chunk_size=2000, tiling_threshold=1000)
        ds.t.extend([rng.integers(0, 255, (40, 30), dtype=np.uint8) for _ in range(3)])
        assert ds._reader("t").tiles, "the writer did not tile: the test would not cover tiles"
    elif kind == "labels":
        ds.create_tensor("t", htype="class_label", class_names=["a", "b"])
        ds.t.extend([i % 2 for i in range(50)])
    return ds


def _value(v, reader):
    """A .numpy() sample's value (json / list values in their t[i].numpy() form) as the other read
    paths give it."""
    if reader.base_htype in ("json", "list", "tag") and isinstance(v, np.ndarray) and v.dtype == object:
        items = v.tolist()
        return items[0] if reader.base_htype == "json" and len(items) == 1 else items
    return v


def _read_all(ds):
    """What every read path gives for tensor t: {path: list of per-row values}, or {path: error}."""
    t = ds.t
    r = ds._reader("t")
    n = len(t)
    paths = {
        "item": lambda: [t[i].numpy() if r.base_htype != "json" else t[i].data()["value"] for i in range(n)],
        "bulk": lambda: list(t.numpy(aslist=True)),
        "column": lambda: list(r.column()),
        "stored": lambda: [bytes(b) for b in r.stored_bytes(np.arange(n))],
        "loader": lambda: [_value(s["t"], r) for b in ds.dataloader().batch(1).numpy(num_threads=2) for s in b],
    }
    if r.sample_compression is None or r.tiles:
        del paths["stored"]
    out = {}
    for name, read in paths.items():
        try:
            out[name] = read()
        except DeepLakeLoaderError as e:
            out[name] = e
    return out


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


SEEDS = {"raw": 101, "lz4": 102, "png": 103, "jpeg": 104, "text": 105, "labels": 106, "canvas": 107, "tiled": 108}
# Deep Lake 3 chunks carry no checksums: flipped bytes inside a raw, lz4, JPEG or JSON payload can
# read as other values, and nothing in the format can tell. PNG is checksummed (a CRC on every
# PNG chunk): there a read that succeeds after any damage must give the original values. After a
# truncation, or a sample's bytes removed while its shape stays, every kind must: the original
# values or a clear error.
CHECKSUMMED = {"png", "canvas"}


def _empty_one_sample(buf, rng):
    """The chunk with one non-empty sample's bytes removed (its shape-table entry kept)."""
    from deeplake_loader.format.chunk import Chunk, serialize

    chunk = Chunk.from_bytes(buf)
    n = chunk.num_samples
    if not len(chunk.bpos) or not n:
        return None
    ranges = chunk.byte_ranges(np.arange(n))
    payloads = [bytes(chunk.data[s:e]) for s, e in ranges]
    full = [i for i in range(n) if payloads[i]]
    if not full:
        return None
    payloads[int(rng.choice(full))] = b""
    return serialize(np.array([chunk.shape(i) for i in range(n)], np.int64), [len(p) for p in payloads],
                     b"".join(payloads))


@pytest.mark.parametrize("kind", ["raw", "lz4", "png", "jpeg", "text", "labels", "canvas", "tiled"])
def test_random_damage_never_escapes(kind):
    """Each damage (bytes flipped, truncated, overwritten, a sample emptied) of a chunk or index
    file: every read path — t[i], t.numpy(aslist=True), the column loader, the stored bytes and the
    dataloader — gives the original values or a DeepLakeLoaderError naming the tensor; never
    another exception; where the format can tell (see CHECKSUMMED), never other values."""
    ds = _build(kind)
    st = ds.storage
    keys = [k for k in st.list("t/") if "/chunks/" in k or k.endswith("_index/unsharded")]
    assert keys
    originals = {k: st.get(k) for k in keys}
    truth = _read_all(dl.load(ds.path))
    assert not any(isinstance(v, Exception) for v in truth.values()), truth
    rng = np.random.default_rng(SEEDS[kind])
    outcomes = {"ok": 0, "error": 0}
    for trial in range(TRIALS):
        key = keys[trial % len(keys)]
        buf = bytearray(originals[key])
        how = ("flip", "truncate", "overwrite", "empty")[trial % 4]
        if how == "flip" and len(buf):
            for p in rng.integers(0, len(buf), 1 + int(rng.integers(0, 4))):
                buf[p] ^= int(rng.integers(1, 256))
        elif how == "truncate":
            buf = buf[:int(rng.integers(0, max(len(buf), 1)))]
        elif how == "overwrite":
            p = int(rng.integers(0, max(len(buf) - 4, 1)))
            buf[p:p + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
        elif how == "empty":
            emptied = _empty_one_sample(bytes(buf), rng) if "/chunks/" in key else None
            if emptied is None:
                continue
            buf = bytearray(emptied)
        st.put(key, bytes(buf))
        checked = how in ("truncate", "empty") or kind in CHECKSUMMED
        try:
            try:
                got = _read_all(dl.load(ds.path))
            except DeepLakeLoaderError as e:  # the dataset does not even open
                got = {"open": e}
            for path, value in got.items():
                if isinstance(value, Exception):
                    outcomes["error"] += 1
                    assert "'t'" in str(value) or "t/" in str(value), f"{path}: error does not name the tensor: {value}"
                    continue
                outcomes["ok"] += 1
                strict = checked and (path != "stored" or how != "flip" and how != "overwrite")  # raw bytes: no CRC
                assert len(value) == len(truth[path]) or not strict, f"{path} after {how} of {key}: length changed"
                if strict:
                    bad = [i for i, (a, b) in enumerate(zip(value, truth[path])) if not _same(a, b)]
                    assert not bad, f"{path} after {how} of {key}: rows {bad[:5]} read other values than were written"
        finally:
            st.put(key, originals[key])
    assert outcomes["error"] > 0
    assert all(_same(a, b) for a, b in zip(_read_all(dl.load(ds.path)).values(), truth.values()))  # restored


_BAD_VALUES = [None, "x", -1, 3.5, [], [1, "a"], {}, {"a": 1}, True, [-5, 2], "uint8", "jpeg"]


@pytest.mark.parametrize("kind", ["raw", "png", "text", "canvas"])
def test_wrong_typed_metadata_fields(kind):
    """Every field of every JSON file replaced by values of the wrong type: a DeepLakeLoaderError or a
    value, never a TypeError/ValueError/RecursionError from inside the reader."""
    import json

    if kind == "canvas":
        ds = dl.empty(next(_names))
        ds.create_tensor("t", htype="image", chunk_compression="png")
        ds.t.extend([np.zeros((4, 4, 3), np.uint8)] * 3)
    else:
        ds = _build(kind)
    st = ds.storage
    for fname in ["t/tensor_meta.json", "t/tensor_info.json", "dataset_meta.json", "version_control_info.json"]:
        orig = st.get_or_none(fname)
        if orig is None:
            continue
        meta = json.loads(orig)
        for field in list(meta):
            for bad in _BAD_VALUES:
                st.put(fname, json.dumps({**meta, field: bad}).encode())
                try:
                    d = dl.load(ds.path)
                    len(d), d.info, d._summary_text()
                    t = d["t"]
                    t.numpy(aslist=True), t.shape, t.htype, t.dtype, t.info
                    d._reader("t").column()
                except DeepLakeLoaderError:
                    pass
                except Exception as e:  # noqa: BLE001 - the assertion names the field
                    raise AssertionError(f"{fname} {field}={bad!r}: {type(e).__name__}: {e}") from e
                finally:
                    st.put(fname, orig)
