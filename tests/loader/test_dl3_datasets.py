"""The dataloader over datasets written by REAL deeplake 3.9.52 (tests/common/dl3_vectors.py).

Every vector's HEAD, every tensor the reader supports, through `.numpy()`, `.pytorch()` and
`.tensorflow()`, compared sample by sample with what deeplake itself read back, with the
conversions LOADER_SEMANTICS.md gives (torch: uint16 -> int32, uint32/uint64 -> int64,
class_label -> int64; text -> str; json/list/tag -> Python values, JSON strings in TensorFlow).
Then the chain features on those datasets: batching + shuffle + worker processes, offset
wrap-around, decode methods, query and sample_by.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.common import dl3
from tests.common.loader import as_lists, keep

pytestmark = pytest.mark.dl3

# empty and zero_samples vectors have nothing to iterate; link[image] files are fetched from disk.
SKIP = {"empty", "zero_samples"}
VECTORS = [v for v in dl3.list_vectors() if v not in SKIP]
TORCH_DTYPE = {np.dtype("uint16"): np.dtype("int32"), np.dtype("uint32"): np.dtype("int64"),
               np.dtype("uint64"): np.dtype("int64")}


class Vector:
    """One vector's HEAD: our Dataset and deeplake's recorded values."""

    def __init__(self, root, name):
        import deeplake_loader as dl

        self.name = name
        self.path = str(root / name / "data")
        self.view = next(v for v in dl3.load_expected(root / name)["views"] if v["id"] == "head")
        self.arrays = dl3.load_npz(root / name / self.view["npz"])
        self.meta = self.view["meta"]
        self.ds = dl.load(self.path, read_only=True)
        self.tensors = [t for t in self.view["tensors"] if self.meta[t]["length"] > 0]
        self.length = min(self.meta[t]["length"] for t in self.tensors)

    def want(self, tensor, row):
        m = self.meta[tensor]
        if m["kind"] == "array":
            return self.arrays[f"t{m['index']}/{row}"]
        return m["values"][row]


@pytest.fixture(scope="module")
def vectors(dl3_vectors):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = Vector(dl3_vectors, name)
        return cache[name]

    return get


def _plain(v):
    """deeplake's recorded JSON form with arrays as nested lists (what our tf.string JSON holds)."""
    if isinstance(v, dict):
        if "__ndarray__" in v:
            return v["__ndarray__"]
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _to_numpy(x):
    if type(x).__module__.startswith("torch"):
        return x.numpy()
    if type(x).__module__.startswith("tensorflow"):
        return x.numpy()
    return x


def mismatch(vec, tensor, row, got, mode):
    """None if ``got`` (one sample of a batch in ``mode``) is deeplake's value for (tensor, row)."""
    m = vec.meta[tensor]
    want = vec.want(tensor, row)
    if m["kind"] != "array":
        if mode == "tensorflow":
            got = _to_numpy(got)
            text = got.decode("utf-8") if isinstance(got, bytes) else got
            if m["kind"] == "text":
                return None if text == want else f"{text!r} != {want!r}"
            return None if json.loads(text) == _plain(want) else f"{text} != {want!r}"
        value = dl3.jsonable(got)
        return None if value == want else f"{value!r} != {want!r}"
    got = np.asarray(_to_numpy(got))
    label = m["htype"] in ("class_label", "sequence[class_label]")
    if mode == "pytorch":
        want = want.astype(np.int64 if label else TORCH_DTYPE.get(want.dtype, want.dtype))
    elif mode == "tensorflow" and label:
        want = want.astype(np.int64)
    return dl3.array_mismatch(got, want)


def terminal(loader, mode, **kw):
    if mode == "numpy":
        kw.pop("return_index", None)
    return getattr(loader, mode)(**kw)


def _value(v, meta):
    """A .numpy() sample's value as the batched forms hold it: json / list values from their
    tensor[i].numpy() form (an object array) back to the value."""
    if meta["kind"] != "array" and isinstance(v, np.ndarray) and v.dtype == object:
        items = v.tolist()
        return items[0] if len(items) == 1 and isinstance(items[0], dict) else items
    return v


def rows_of(batch, mode):
    return np.asarray(_to_numpy(batch["index"])).reshape(-1).tolist()


def check_batches(vec, loader, mode, tensors, *, rows_when_no_index=None):
    """Every sample of every batch against deeplake, in ``mode``'s dtypes; returns the rows seen,
    in order."""
    seen = []
    problems = []
    for batch in loader:
        if isinstance(batch, list):  # .numpy(): a list of samples (as deeplake's), each value in t[i].numpy() form
            assert all(list(s.keys())[:len(tensors)] == tensors for s in batch)
            batch = {t: [_value(s[t], vec.meta[t]) for s in batch] for t in tensors}
        if "index" in batch:
            rows = rows_of(batch, mode)
        else:
            rows = rows_when_no_index[len(seen):len(seen) + len(batch[tensors[0]])]
        assert list(batch.keys())[:len(tensors)] == tensors
        for t in tensors:
            column = batch[t]
            assert len(column) == len(rows), (t, len(column), rows)
            for k, row in enumerate(rows):
                msg = mismatch(vec, t, row, column[k], mode)
                if msg:
                    problems.append(f"{vec.name}:{t} row {row} ({mode}): {msg}")
        seen.extend(rows)
    assert not problems, "\n".join(problems[:10])
    return seen


# ---- every vector, every tensor, every mode ----------------------------------------------------

@pytest.mark.parametrize("mode", ["numpy", "pytorch", "tensorflow"])
@pytest.mark.parametrize("name", VECTORS)
def test_every_sample_of_every_vector(vectors, name, mode):
    vec = vectors(name)
    loader = terminal(vec.ds.dataloader(), mode, tensors=vec.tensors)
    assert len(loader) == vec.length
    seen = check_batches(vec, loader, mode, vec.tensors, rows_when_no_index=list(range(vec.length)))
    assert seen == list(range(vec.length))


def _uniform(vec):
    return [t for t in vec.tensors if vec.meta[t]["uniform"] and vec.meta[t]["length"] == vec.length]


@pytest.mark.parametrize("name", ["image_jpeg", "image_png", "multi_chunk", "class_label", "htypes", "lz4"])
@pytest.mark.parametrize("workers", [0, 2])
def test_batched_shuffled_epochs(vectors, name, workers):
    """batch(3) + shuffle over every tensor (stacked by the default collate when shapes agree,
    else kept as lists by a collate_fn); num_workers 0 and 2 (the transform makes worker processes
    run): every row once per epoch, each sample still deeplake's value."""
    import deeplake_loader as dl

    vec = vectors(name)
    tensors = [t for t in vec.tensors if vec.meta[t]["length"] == vec.length]
    collate = None if tensors == _uniform(vec) else as_lists
    dl.random.seed(5)
    loader = (vec.ds.dataloader().batch(3).shuffle(buffer_size=1)
              .transform({**{t: keep for t in tensors}, "index": None})
              .pytorch(num_workers=workers, collate_fn=collate))
    orders = []
    with loader:
        assert len(loader) == -(-vec.length // 3)
        for _ in range(2):
            # a collate_fn's lists hold numpy samples as transforms see them: already in torch's dtypes
            seen = check_batches(vec, loader, "pytorch", tensors)
            assert sorted(seen) == list(range(vec.length))
            orders.append(seen)
    if vec.length >= 8:
        assert orders[0] != list(range(vec.length)) or orders[1] != list(range(vec.length))


@pytest.mark.parametrize("mode", ["numpy", "pytorch", "tensorflow"])
def test_offset_wraps_around(vectors, mode):
    vec = vectors("multi_chunk")
    k = vec.length // 3 + 1
    order = list(range(k, vec.length)) + list(range(k))
    loader = terminal(vec.ds.dataloader().offset(k).batch(7), mode, tensors=_uniform(vec))
    seen = check_batches(vec, loader, mode, _uniform(vec), rows_when_no_index=order)
    if mode != "numpy":
        assert seen == order


@pytest.mark.parametrize("name", ["image_jpeg", "image_png", "image_other"])
def test_decode_methods_on_deeplake_images(vectors, name):
    vec = vectors(name)
    images = [t for t in vec.tensors if vec.meta[t]["htype"] == "image"]
    assert images, name
    for t in images:
        pil = vec.ds.dataloader().pytorch(tensors=[t], decode_method={t: "pil"}) \
            if vec.meta[t]["sample_compression"] in ("jpeg", "png") else None
        raw = vec.ds.dataloader().pytorch(tensors=[t], decode_method={t: "tobytes"})
        for batch in raw:
            row = rows_of(batch, "pytorch")[0]
            data = batch[t][0]
            assert isinstance(data, bytes)
            want = vec.want(t, row)
            if want.size == 0:  # an appended None: no bytes
                assert data == b"", row
                continue
            assert dl3.array_mismatch(np.asarray(Image.open(io.BytesIO(data))).reshape(want.shape), want) is None
        if pil is not None:
            for batch in pil:
                row = rows_of(batch, "pytorch")[0]
                want = vec.want(t, row)  # deeplake gives gray images as (h, w, 1)
                if want.size == 0:
                    assert batch[t][0] is None, row
                    continue
                assert isinstance(batch[t][0], Image.Image)
                assert dl3.array_mismatch(np.asarray(batch[t][0]).reshape(want.shape), want) is None


def test_query_and_sample_by_on_deeplake_labels(vectors):
    """Class names and numbers in a query select the rows deeplake's labels say; sample_by over
    them draws only rows of positive weight."""
    import deeplake_loader as dl

    vec = vectors("class_label")
    labels = [int(vec.want("c", i)[0]) for i in range(vec.meta["c"]["length"])]
    names = vec.meta["c"]["class_names"]
    for value in sorted(set(labels)):
        want = [i for i, v in enumerate(labels) if v == value]
        for q in (f"select * where c == {value}", f"select * where c == '{names[value]}'"):
            loader = vec.ds.dataloader().query(q).pytorch(tensors=["c"])
            seen = check_batches(vec, loader, "pytorch", ["c"])
            assert seen == want, q
    dl.random.seed(3)
    weights = [1.0 if v == labels[0] else 0.0 for v in labels]
    loader = vec.ds.dataloader().sample_by(weights).batch(4).pytorch(tensors=["c"])
    seen = check_batches(vec, loader, "pytorch", ["c"])
    assert len(seen) == len(labels) and {labels[r] for r in seen} == {labels[0]}
