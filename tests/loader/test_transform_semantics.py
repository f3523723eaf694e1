"""What a transform sees and returns (shared/spec/LOADER_SEMANTICS.md), on the ds.dataloader() chain,
in the calling process and in worker processes; user code sent to workers by value (lambdas,
closures, local functions) and a clear error for what cannot travel; ragged tensors in .numpy();
decode_method="data"; and the no-transform path staying free of per-sample Python.

Every dataset value encodes its row (tests/loader/conftest.py), so each check is against the row
the batch's index claims.
"""

import functools
import threading

import numpy as np
import pytest

from deeplake_loader.errors import WorkerError
from deeplake_loader.pipeline.collate import Assembler
from deeplake_loader.transforms import RandomResizedCrop
from tests.common.loader import Compose

from .conftest import CLASSES, N, image_for, rows_of

TORCH_INT = {"pytorch": np.int64, "tensorflow": np.int64, "numpy": np.uint32}  # class_label as the transform sees it
VEC = {"pytorch": np.int32, "tensorflow": np.uint16, "numpy": np.uint16}  # a uint16 tensor as the transform sees it


def _np(x):
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


@pytest.mark.parametrize("mode", ["pytorch", "tensorflow", "numpy"])
def test_a_callable_transform_sees_index_and_the_terminal_dtypes(loader_ds, mode):
    """An IterableOrderedDict (iterating it yields its values, as deeplake's), index last except
    under .numpy(), which has none (as deeplake's)."""
    from collections import OrderedDict

    seen = []

    def record(sample):
        seen.append(sample)
        return sample

    loader = getattr(loader_ds.dataloader().transform(record).batch(4), mode)(tensors=["labels", "vec", "caption"])
    for _ in loader:
        pass
    assert len(seen) == N
    for row, s in enumerate(seen):
        assert isinstance(s, OrderedDict) and [id(v) for v in s] == [id(v) for v in s.values()]
        if mode == "numpy":
            assert list(s.keys()) == ["labels", "vec", "caption"]
        else:
            assert list(s.keys()) == ["labels", "vec", "caption", "index"] and int(s["index"][0]) == row
            assert s["index"].dtype == np.int64 and s["index"].shape == (1,)
        assert s["labels"].dtype == TORCH_INT[mode] and s["labels"].tolist() == [row % 4]
        assert s["vec"].dtype == VEC[mode] and s["vec"].tolist() == [row, 2 * row]
        assert s["caption"] == f"row {row}"


def test_a_returned_tuple_or_list_is_a_list_of_batched_tensors(loader_ds):
    import torch

    for make in (tuple, list):
        loader = loader_ds.dataloader().transform(lambda s, make=make: make((s["labels"] * 10, s["index"]))).batch(3)
        batches = list(loader.pytorch(tensors=["labels"]))
        assert len(batches) == -(-N // 3)
        for b in batches:
            assert isinstance(b, list) and len(b) == 2 and all(isinstance(t, torch.Tensor) for t in b)
            rows = b[1].reshape(-1).tolist()
            assert b[0].dtype == torch.int64 and b[0].shape == (len(rows), 1)
            assert b[0].reshape(-1).tolist() == [10 * (r % 4) for r in rows]
        assert [r for b in batches for r in b[1].reshape(-1).tolist()] == list(range(N))


def test_a_returned_dict_is_the_batch_without_index(loader_ds):
    loader = loader_ds.dataloader().transform(lambda s, k: {"y": s["labels"] * k}, k=100).batch(4).pytorch()
    batch = next(iter(loader))
    assert list(batch.keys()) == ["y"]
    assert batch["y"].reshape(-1).tolist() == [0, 100, 200, 300]


def test_a_transform_dict_gives_its_keys_in_its_order_and_converted_values(loader_ds):
    got = {}

    def vec_fn(v):
        got.setdefault("vec", v)
        return v * 2

    def label_fn(v):
        got.setdefault("labels", v)
        return v

    loader = loader_ds.dataloader().transform({"vec": vec_fn, "index": None, "labels": label_fn}).batch(5).pytorch()
    batches = list(loader)
    assert got["vec"].dtype == np.int32 and got["labels"].dtype == np.int64 and got["labels"].shape == (1,)
    rows = []
    for b in batches:
        assert list(b.keys()) == ["vec", "index", "labels"]
        r = rows_of(b)
        rows += r
        assert b["vec"].tolist() == [[2 * x, 4 * x] for x in r] and b["labels"].reshape(-1).tolist() == [x % 4 for x in r]
    assert rows == list(range(N))
    # without "index" in the dict, the batch holds no index
    b = next(iter(loader_ds.dataloader().transform({"labels": label_fn}).batch(5).pytorch()))
    assert list(b.keys()) == ["labels"]


def test_return_index_false_hides_index_from_transforms(loader_ds):
    seen = []
    loader = loader_ds.dataloader().transform(lambda s: seen.append(sorted(s.keys())) or s).batch(7)
    batch = next(iter(loader.pytorch(tensors=["labels"], return_index=False)))
    assert seen[0] == ["labels"] and list(batch.keys()) == ["labels"]
    with pytest.raises(ValueError, match="names 'index' but return_index=False"):
        next(iter(loader_ds.dataloader().transform({"labels": None, "index": None}).pytorch(return_index=False)))


def test_a_collate_fn_gets_samples_with_index_and_returns_the_batch(loader_ds):
    def collate(samples):
        return {"rows": [int(s["index"][0]) for s in samples], "labels": [int(s["labels"][0]) for s in samples]}

    batches = list(loader_ds.dataloader().batch(8).shuffle().pytorch(tensors=["labels"], collate_fn=collate))
    rows = [r for b in batches for r in b["rows"]]
    assert sorted(rows) == list(range(N))
    for b in batches:
        assert list(b.keys()) == ["rows", "labels"] and b["labels"] == [r % 4 for r in b["rows"]]


def test_the_same_semantics_in_worker_processes_with_a_lambda(loader_ds):
    """A lambda transform over every tensor, shuffled, two spawn-started workers: it reaches them
    by value, sees index and int64 labels there, and each batch holds the rows its index says."""
    loader = (loader_ds.dataloader().batch(6).shuffle()
              .transform(lambda s: {"img": s["images"], "label": s["labels"], "row": s["index"],
                                    "text": s["caption"], "kind": str(s["labels"].dtype)})
              .pytorch(num_workers=2))
    with loader:
        rows = []
        for b in loader:
            r = b["row"].reshape(-1).tolist()
            rows += r
            assert set(b["kind"]) == {"int64"}
            assert b["label"].reshape(-1).tolist() == [x % 4 for x in r] and b["text"] == [f"row {x}" for x in r]
            for img, x in zip(b["img"].numpy(), r):
                assert np.array_equal(img, image_for(x))
        assert sorted(rows) == list(range(N))


class _Scale:
    def __init__(self, factor):
        self.factor = factor

    def __call__(self, v):
        return v * self.factor


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_lambdas_closures_and_local_functions_travel_to_workers(loader_ds, context):
    """One loader, every kind of user code that plain pickle refuses, in two worker processes:
    forked (they inherit it), or fresh interpreters (it travels by value, cloudpickle)."""
    offset = np.array([1000, 2000])  # captured by a closure

    def local_fn(v):  # a local function
        return v + offset

    def add(v, k):
        return v + k

    class Local:  # a locally defined callable class
        def __call__(self, img):
            return img[:2, :2].copy()

    def collate(samples):  # a local collate_fn that closes over a lambda
        pick = lambda s: int(s["index"][0])  # noqa: E731
        return {"rows": [pick(s) for s in samples], "vec": np.stack([s["vec"] for s in samples]),
                "labels": np.stack([s["labels"] for s in samples]), "images": np.stack([s["images"] for s in samples]),
                "caption": [s["caption"] for s in samples]}

    transform = {"vec": local_fn, "labels": functools.partial(add, k=10), "images": Local(),
                 "caption": lambda c: c.upper(), "index": _Scale(1)}
    loader = loader_ds.dataloader().transform(transform).batch(7).pytorch(num_workers=2, collate_fn=collate)
    loader.multiprocessing_context = context
    with loader:
        rows = []
        for b in loader:
            r = b["rows"]
            rows += r
            assert b["vec"].tolist() == [[x + 1000, 2 * x + 2000] for x in r]
            assert b["labels"].reshape(-1).tolist() == [x % 4 + 10 for x in r]
            assert b["caption"] == [f"ROW {x}" for x in r]
            assert np.array_equal(b["images"], np.stack([image_for(x)[:2, :2] for x in r]))
        assert rows == list(range(N))


def test_what_cannot_travel_to_workers_is_named(loader_ds, tmp_path):
    """Workers that run a fresh interpreter (multiprocessing_context='spawn') get the transform by
    value: what cannot be pickled is named. Forked workers inherit it, as torch's do: it just works."""
    log = open(tmp_path / "log.txt", "w")  # noqa: SIM115 - an open file is the point

    def write_log(sample):
        log.write(str(sample["index"]))
        return sample

    forked = loader_ds.dataloader().transform(write_log).batch(4).pytorch(tensors=["labels"], num_workers=2)
    assert sorted(r for b in forked for r in b["index"].reshape(-1).tolist()) == list(range(N))
    forked.close()
    loader = loader_ds.dataloader().transform(write_log).batch(4).pytorch(tensors=["labels"], num_workers=2)
    loader.multiprocessing_context = "spawn"
    with pytest.raises(WorkerError) as e:
        next(iter(loader))
    msg = str(e.value)
    assert "closure variable 'log'" in msg and "write_log" in msg and "TextIOWrapper" in msg and "num_workers=0" in msg
    loader.close()

    class Guarded:
        def __init__(self):
            self.lock = threading.Lock()

        def __call__(self, v):
            with self.lock:
                return v

    loader = loader_ds.dataloader().transform({"labels": Guarded()}).pytorch(num_workers=1)
    loader.multiprocessing_context = "spawn"
    with pytest.raises(WorkerError, match=r"attribute 'lock' of transform of tensor 'labels' \(a _thread\.lock\)"):
        next(iter(loader))
    loader.close()
    log.close()


def test_fused_crop_then_python_in_workers_keeps_index_and_rows(jpeg_ds):
    chain = Compose([RandomResizedCrop(12), lambda a: a.mean(axis=2)])
    loader = (jpeg_ds.dataloader().transform({"images": chain, "labels": None, "index": None}).batch(4)
              .pytorch(num_workers=2))
    with loader:
        assert loader._get_pipeline().columns["images"].crop is chain.transforms[0]
        rows = []
        for b in loader:
            assert list(b.keys()) == ["images", "labels", "index"] and tuple(b["images"].shape[1:]) == (12, 12)
            rows += rows_of(b)
            assert b["labels"].reshape(-1).tolist() == [r % 4 for r in rows_of(b)]
        assert rows == list(range(len(jpeg_ds)))


def test_without_a_transform_no_python_runs_per_sample(loader_ds, jpeg_ds, monkeypatch):
    """The fast path: the decoder's arrays are the batch; per-sample assembly never runs, with or
    without a fused crop (a transform dict that only crops, keeps or names index)."""
    def no_samples(self, columns, rows):
        raise AssertionError("per-sample Python ran on the fast path")

    monkeypatch.setattr(Assembler, "samples", no_samples)
    rows = []
    for b in loader_ds.dataloader().batch(8).shuffle().pytorch(tensors=["images", "labels", "caption"]):
        rows += rows_of(b)
        for img, r in zip(b["images"].numpy(), rows_of(b)):
            assert np.array_equal(img, image_for(r))
        assert b["caption"] == [f"row {r}" for r in rows_of(b)]
    assert sorted(rows) == list(range(N))
    loader = jpeg_ds.dataloader().transform({"images": RandomResizedCrop(8), "labels": None, "index": None}).batch(5)
    batches = list(loader.pytorch(num_workers=2))
    assert [list(b.keys()) for b in batches] == [["images", "labels", "index"]] * 4
    assert [r for b in batches for r in rows_of(b)] == list(range(20))


# ---- ragged tensors in .numpy() ---------------------------------------------------------------

@pytest.fixture(scope="module")
def ragged_ds(tmp_path_factory):
    """Multi-label classes, variable box counts and variable image sizes; every value encodes its row."""
    import deeplake_loader as dl

    path = str(tmp_path_factory.mktemp("ragged") / "ds")
    ds = dl.empty(path)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="png")
        ds.create_tensor("labels", htype="class_label", class_names=CLASSES)
        ds.create_tensor("boxes", htype="bbox")
        ds.create_tensor("row", dtype="int64")
        ds.extend({"images": [image_for(i, 10 + i % 3, 12) for i in range(12)],
                   "labels": [[j % 4 for j in range(i, i + 1 + i % 3)] for i in range(12)],
                   "boxes": [np.full((i % 4, 4), i, np.float32) for i in range(12)],
                   "row": [np.array([i]) for i in range(12)]})
    return dl.load(path, read_only=True)


def test_numpy_gives_ragged_tensors_sample_by_sample(ragged_ds):
    batches = list(ragged_ds.dataloader().batch(4).numpy())
    assert len(batches) == 3 and all(isinstance(b, list) and len(b) == 4 for b in batches)
    for b in batches:
        for s in b:
            r = int(s["row"][0])
            assert np.array_equal(s["images"], image_for(r, 10 + r % 3, 12))
            assert s["labels"].tolist() == [j % 4 for j in range(r, r + 1 + r % 3)]
            assert s["boxes"].shape == (r % 4, 4) and (s["boxes"] == r).all()
    assert [int(s["row"][0]) for b in batches for s in b] == list(range(12))
    # .pytorch() does as deeplake does: shapes that differ cannot stack (our error names the tensor)
    with pytest.raises(Exception, match="'images'.*shapes"):
        next(iter(ragged_ds.dataloader().batch(4).pytorch(tensors=["images"])))
    # a transform's dicts, one per sample, as it returned them
    b = next(iter(ragged_ds.dataloader().batch(4).transform(lambda s: {"boxes": s["boxes"], "row": s["row"]}).numpy()))
    assert [type(s) for s in b] == [dict] * 4 and [s["boxes"].shape for s in b] == [(r % 4, 4) for r in range(4)]


def test_decode_method_data_is_tensor_data(loader_ds):
    """decode_method="data" gives what ds.t[i].data() gives, per sample (class names as text,
    images with their sample_info), merged key by key in a batch."""
    loader = loader_ds.dataloader().batch(3).pytorch(
        tensors=["labels", "images", "caption"], decode_method={"labels": "data", "images": "data", "caption": "data"})
    rows = []
    for b in loader:
        r = rows_of(b)
        rows += r
        assert set(b["labels"]) == {"value", "text"} and set(b["images"]) == {"value", "sample_info"}
        assert _np(b["labels"]["value"]).tolist() == [[x % 4] for x in r]
        assert _np(b["labels"]["value"]).dtype == np.uint32  # as stored: data() is not converted
        assert b["labels"]["text"] == [tuple(CLASSES[x % 4] for x in r)]  # torch-style: positions transposed (tuples)
        assert b["caption"]["value"] == [loader_ds.caption[x].data()["value"] for x in r]
        for k, x in enumerate(r):
            assert np.array_equal(_np(b["images"]["value"])[k], loader_ds.images[x].data()["value"])
        assert b["images"]["sample_info"] == loader_ds.images[r[0]].data()["sample_info"]
    assert rows == list(range(N))


def _label_smoothing(sample):
    """Soft targets from a class label (what label smoothing and mixup return): floats in (0, 1)."""
    out = {"labels": sample["labels"].astype(np.float32) * 0.9 + 0.05}
    if "index" in sample.keys():  # (.numpy() gives no index)
        out["index"] = sample["index"]
    return out


def _halve(v):
    return v * 0.5


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("mode", ["pytorch", "tensorflow", "numpy"])
def test_what_a_transform_returns_keeps_its_dtype_even_under_a_class_label_key(loader_ds, mode, workers):
    """The terminal's conversions (class_label -> int64) apply to what a transform receives, never to
    what it returns: soft labels under the key of a class_label tensor stay floats."""
    callable_loader = getattr(loader_ds.dataloader().transform(_label_smoothing).batch(5), mode)(
        tensors=["labels"], num_workers=workers)
    transform = {"labels": _halve} if mode == "numpy" else {"labels": _halve, "index": None}
    dict_loader = getattr(loader_ds.dataloader().transform(transform).batch(5), mode)(num_workers=workers)
    for loader, value, dtype in ((callable_loader, lambda r: (r % 4) * 0.9 + 0.05, np.float32),
                                 (dict_loader, lambda r: (r % 4) * 0.5, np.float64)):
        rows = []
        with loader:
            for k, b in enumerate(loader):
                if mode == "numpy":  # a list of samples, in row order (no index)
                    labels, r = np.stack([s["labels"] for s in b]), list(range(5 * k, 5 * k + len(b)))
                else:
                    labels, r = _np(b["labels"]), rows_of(b)
                assert labels.dtype == dtype, f"{mode}: a transform's {dtype.__name__} came back as {labels.dtype}"
                assert np.allclose(labels.reshape(-1), [value(x) for x in r])
                rows += r
        assert rows == list(range(N))


@pytest.mark.parametrize("mode", ["pytorch", "tensorflow"])
def test_without_user_code_class_labels_are_int64(loader_ds, mode):
    """The fast path (no transform) still converts what it hands over, now in the one place that
    decides a batch's dtypes (pipeline/collate.py)."""
    b = next(iter(getattr(loader_ds.dataloader().batch(4), mode)(tensors=["labels", "vec"])))
    assert _np(b["labels"]).dtype == np.int64 and _np(b["labels"]).reshape(-1).tolist() == [0, 1, 2, 3]
    assert _np(b["vec"]).dtype == VEC[mode]
