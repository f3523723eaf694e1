"""Random damage to chunk and index files: every read either returns a value or raises a
DeepLakeLoaderError (CorruptDatasetError / DecodeError) naming the tensor — never another exception,
never a crash."""

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


def _read_all(ds):
    t = ds.t
    r = ds._reader("t")
    for i in range(len(t)):
        t[i].numpy() if r.base_htype != "json" else t[i].data()
    t.numpy(aslist=True)
    r.column()
    if r.sample_compression is not None and not r.tiles:
        r.stored_bytes(np.arange(len(t)))


@pytest.mark.parametrize("kind", ["raw", "lz4", "png", "jpeg", "text", "labels", "canvas", "tiled"])
def test_random_damage_never_escapes(kind):
    ds = _build(kind)
    st = ds.storage
    keys = [k for k in st.list("t/") if "/chunks/" in k or k.endswith("_index/unsharded")]
    assert keys
    originals = {k: st.get(k) for k in keys}
    rng = np.random.default_rng(hash(kind) % 2**32)
    outcomes = {"ok": 0, "error": 0}
    for trial in range(TRIALS):
        key = keys[trial % len(keys)]
        buf = bytearray(originals[key])
        how = trial % 3
        if how == 0 and len(buf):  # flip bytes
            for p in rng.integers(0, len(buf), 1 + int(rng.integers(0, 4))):
                buf[p] ^= int(rng.integers(1, 256))
        elif how == 1:  # truncate
            buf = buf[:int(rng.integers(0, max(len(buf), 1)))]
        else:  # garbage tail / overwrite a header word
            p = int(rng.integers(0, max(len(buf) - 4, 1)))
            buf[p:p + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
        st.put(key, bytes(buf))
        try:
            _read_all(dl.load(ds.path))
            outcomes["ok"] += 1
        except DeepLakeLoaderError as e:
            outcomes["error"] += 1
            assert "'t'" in str(e) or "t/" in str(e), f"error does not name the tensor or key: {e}"
        finally:
            st.put(key, originals[key])
    assert outcomes["error"] > 0
    _read_all(dl.load(ds.path))  # restored: reads again


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
