"""What user code is handed and what it gets back, the same on every entry point (issue 21, "Batch
and sample shapes"; pipeline/collate.py), as deeplake 3.9.52 does it — each behaviour below was
observed on deeplake's enterprise loader (``deeplake.query(...).dataloader()``) and its
``ds.pytorch()``; tests/loader/test_enterprise_compare.py and test_oss_loaders.py compare batch by
batch with the real package:

* samples are ``IterableOrderedDict``s (iterating one yields its values) in the chain's transforms
  and collate_fns as in ``ds.pytorch()``'s; json / list values in ``tensor[i].numpy()`` form;
* ``.numpy()`` yields a list of per-sample dicts (values as stored, text a ``str``, no ``index``);
* a ``collate_fn`` gets numpy samples and its result is the batch, untouched (numpy stays numpy);
* a transform's own dict is a plain ``dict`` batch (iterating it yields its keys), while the
  default batch and a transform dict's batch iterate their values;
* ``tensors=[]`` means every tensor.
"""

from collections import OrderedDict

import numpy as np
import pytest
import torch

from deeplake_loader.util.iterable_ordered_dict import IterableOrderedDict

from .conftest import CLASSES, N, image_for, rows_of


@pytest.fixture(scope="module")
def text_ds(tmp_path_factory):
    """Rows with json and list values beside labels (each value encodes its row)."""
    import deeplake_loader as dl

    path = str(tmp_path_factory.mktemp("shapes") / "ds")
    ds = dl.empty(path)
    with ds:
        ds.create_tensor("labels", htype="class_label", class_names=CLASSES)
        ds.create_tensor("info_json", htype="json")
        ds.create_tensor("tags", htype="list")
        ds.create_tensor("caption", htype="text")
        ds.extend({"labels": [i % 4 for i in range(8)], "info_json": [{"row": i} for i in range(8)],
                   "tags": [[f"t{i}", "x"] for i in range(8)], "caption": [f"row {i}" for i in range(8)]})
    return dl.load(path, read_only=True)


def _numpy_collate(samples):
    """A collate_fn that builds numpy arrays (and calls numpy methods on what it gets)."""
    return {"labels": np.stack([s["labels"] for s in samples]).astype(np.int16),
            "index": np.stack([s["index"] for s in samples])}


# ---- samples -----------------------------------------------------------------------------------

def test_a_chain_transform_gets_an_iterable_ordered_dict(loader_ds):
    seen = []

    def unpack(sample):
        seen.append(sample)
        labels, vec, index = sample  # iterating a sample yields its values, in tensor order
        return labels * 10, vec, index

    batches = list(loader_ds.dataloader().transform(unpack).batch(5).pytorch(tensors=["labels", "vec"]))
    assert all(isinstance(s, IterableOrderedDict) and isinstance(s, OrderedDict) for s in seen)
    assert [list(s.keys()) for s in seen[:1]] == [["labels", "vec", "index"]]
    rows = [r for b in batches for r in b[2].reshape(-1).tolist()]
    assert rows == list(range(N))
    assert [v for b in batches for v in b[0].reshape(-1).tolist()] == [10 * (r % 4) for r in rows]


def test_a_chain_collate_fn_gets_iterable_ordered_dicts_of_numpy(loader_ds):
    got = []

    def collate(samples):
        got.extend(samples)
        return [int(s["index"][0]) for s in samples]

    batches = list(loader_ds.dataloader().batch(4).pytorch(tensors=["labels", "vec"], collate_fn=collate))
    assert [r for b in batches for r in b] == list(range(N))
    for s in got:
        assert isinstance(s, IterableOrderedDict) and list(s.keys()) == ["labels", "vec", "index"]
        assert all(isinstance(v, np.ndarray) for v in s)  # numpy, as deeplake hands them
        assert s["labels"].dtype == np.int64 and s["vec"].dtype == np.int32 and s["index"].dtype == np.int64


def test_json_and_list_values_reach_user_code_as_tensor_numpy_gives_them(text_ds):
    """deeplake's enterprise loader hands json and list values in their ``tensor[i].numpy()`` form
    (object arrays) and text as a str; the default collate gives the values back as lists."""
    seen = []

    def record(s):
        seen.append(s)
        return s

    batches = list(text_ds.dataloader().transform(record).batch(4).pytorch(tensors=["info_json", "tags", "caption"]))
    for row, s in enumerate(seen):
        assert s["info_json"].dtype == object and s["info_json"].tolist() == [{"row": row}]
        assert s["tags"].dtype == object and s["tags"].tolist() == [f"t{row}", "x"]
        assert s["caption"] == f"row {row}"
        assert np.array_equal(s["info_json"], text_ds.info_json[row].numpy(), equal_nan=False)
    assert batches[0]["info_json"] == [{"row": i} for i in range(4)]
    assert batches[0]["tags"] == [[f"t{i}", "x"] for i in range(4)]


# ---- .numpy() ----------------------------------------------------------------------------------

def test_numpy_yields_lists_of_samples_with_values_as_stored(text_ds, jpeg_ds):
    from PIL import Image

    batches = list(text_ds.dataloader().batch(3).numpy())
    assert [len(b) for b in batches] == [3, 3, 2]
    for row, s in enumerate(s for b in batches for s in b):
        assert isinstance(s, IterableOrderedDict) and "index" not in s.keys()
        assert s["labels"].dtype == np.uint32 and s["labels"].tolist() == [row % 4]  # no conversion
        assert s["caption"] == f"row {row}" and s["info_json"].tolist() == [{"row": row}]
        assert s["tags"].tolist() == [f"t{row}", "x"]
    for s in next(iter(jpeg_ds.dataloader().batch(4).numpy(decode_method={"images": "pil"}))):
        assert isinstance(s["images"], Image.Image)


def test_numpy_transforms_see_no_index_and_their_results_are_the_samples(loader_ds):
    seen = []

    def to_dict(s):
        seen.append(list(s.keys()))
        return {"label": int(s["labels"][0]), "first": s["vec"][0]}

    batches = list(loader_ds.dataloader().transform(to_dict).batch(8).numpy(tensors=["labels", "vec"], num_workers=0))
    assert seen[0] == ["labels", "vec"]
    flat = [s for b in batches for s in b]
    assert [type(s) for s in flat] == [dict] * N
    assert [(s["label"], int(s["first"])) for s in flat] == [(r % 4, r) for r in range(N)]
    with pytest.raises(ValueError, match=r"names 'index' but \.numpy\(\) gives no index"):
        next(iter(loader_ds.dataloader().transform({"labels": None, "index": None}).numpy()))


# ---- collate_fn ----------------------------------------------------------------------------------

@pytest.mark.parametrize("workers", [0, 2])
def test_a_collate_fns_numpy_result_is_the_batch_untouched(loader_ds, workers):
    with loader_ds.dataloader().batch(6).pytorch(tensors=["labels"], collate_fn=_numpy_collate,
                                                 num_workers=workers) as loader:
        batches = list(loader)
    assert all(type(b) is dict and isinstance(b["labels"], np.ndarray) for b in batches)
    assert [b["labels"].dtype for b in batches] == [np.int16] * len(batches)
    assert [r for b in batches for r in b["index"].reshape(-1).tolist()] == list(range(N))
    b = batches[0]
    assert b["labels"].astype(np.int64).reshape(-1).tolist() == [0, 1, 2, 3, 0, 1]  # numpy methods work


def test_a_collate_fn_of_ds_pytorch_and_of_a_rebuilt_torch_dataloader_is_untouched(loader_ds):
    batch = next(iter(loader_ds.pytorch(tensors=["labels"], batch_size=6, num_workers=0, collate_fn=_numpy_collate)))
    assert isinstance(batch["labels"], np.ndarray) and batch["index"].reshape(-1).tolist() == list(range(6))
    loader = loader_ds.dataloader().batch(6).pytorch(tensors=["labels"], collate_fn=_numpy_collate)
    rebuilt = torch.utils.data.DataLoader(loader.dataset, batch_sampler=loader.batch_sampler,
                                          collate_fn=loader.collate_fn)
    b = next(iter(rebuilt))
    assert isinstance(b["labels"], np.ndarray) and b["labels"].dtype == np.int16


def test_ds_pytorch_collate_fn_gets_deeplakes_samples(loader_ds):
    """ds.pytorch(): IterableOrderedDicts of numpy values (labels upcast to int64, text as
    ``array(['...'])``, index an ndarray) — decode_method 'data' values as stored (uint32)."""
    got = []
    loader = loader_ds.pytorch(tensors=["labels", "caption"], batch_size=5, num_workers=0,
                               collate_fn=lambda samples: got.extend(samples) or len(samples),
                               decode_method={"labels": "data"})
    assert list(loader) == [5] * (N // 5)
    for row, s in enumerate(got):
        assert isinstance(s, IterableOrderedDict) and list(s.keys()) == ["labels", "caption", "index"]
        assert s["labels"]["value"].dtype == np.uint32 and s["labels"]["value"].tolist() == [row % 4]
        assert s["caption"].tolist() == [f"row {row}"] and s["index"].tolist() == [row]
    got.clear()
    list(loader_ds.pytorch(tensors=["labels"], batch_size=5, num_workers=0, collate_fn=lambda ss: got.extend(ss)))
    assert {s["labels"].dtype for s in got} == {np.dtype(np.int64)}


def test_deeplakes_pytorch_collate_fn_name_works_on_samples(loader_ds):
    """``from deeplake.integrations.pytorch.common import collate_fn``, called by a user's collate_fn."""
    from deeplake_loader.integrations.pytorch.common import collate_fn

    def my_collate(samples):
        batch = collate_fn(samples)
        batch["n"] = len(samples)
        return batch

    b = next(iter(loader_ds.dataloader().batch(4).pytorch(tensors=["labels", "images"], collate_fn=my_collate)))
    assert isinstance(b, IterableOrderedDict) and b["n"] == 4
    assert b["labels"].dtype == torch.int64 and tuple(b["images"].shape) == (4, 24, 32, 3)
    assert np.array_equal(b["images"][2].numpy(), image_for(2))


# ---- the batch's container ---------------------------------------------------------------------------

@pytest.mark.parametrize("entry", ["chain", "ds.pytorch"])
def test_a_transforms_dict_is_a_plain_dict_batch(loader_ds, entry):
    def to_dict(s):
        return {"y": s["labels"], "v": s["vec"]}

    if entry == "chain":
        loader = loader_ds.dataloader().transform(to_dict).batch(4).pytorch(tensors=["labels", "vec"])
    else:
        loader = loader_ds.pytorch(transform=to_dict, tensors=["labels", "vec"], batch_size=4, num_workers=0)
    b = next(iter(loader))
    assert type(b) is dict and list(b) == ["y", "v"]  # iterating it yields its keys, as deeplake's
    assert b["y"].dtype == torch.int64 and b["v"].dtype == torch.int32


def test_default_and_transform_dict_batches_iterate_their_values(loader_ds):
    b = next(iter(loader_ds.dataloader().batch(4).pytorch(tensors=["labels", "vec"])))
    assert isinstance(b, IterableOrderedDict)
    labels, vec, index = b
    assert labels.dtype == torch.int64 and rows_of(b) == [0, 1, 2, 3]
    b = next(iter(loader_ds.dataloader().transform({"vec": None, "labels": None}).batch(4).pytorch()))
    assert isinstance(b, IterableOrderedDict) and list(b.keys()) == ["vec", "labels"]


# ---- tensors=[] ---------------------------------------------------------------------------------------

def test_an_empty_tensor_list_means_every_tensor(loader_ds):
    every = ["caption", "images", "labels", "ragged", "vec"]
    b = next(iter(loader_ds.dataloader().batch(1).pytorch(tensors=[])))
    assert list(b.keys()) == every + ["index"]
    s = next(iter(loader_ds.dataloader().batch(2).numpy(tensors=[])))[0]
    assert list(s.keys()) == every
    # ds.pytorch(tensors=[]): deeplake 3.9.52 fails inside ('attempt to get argmin of an empty
    # sequence'); ours reads every tensor, as the chain does
    b = next(iter(loader_ds.pytorch(tensors=[], batch_size=1, num_workers=0)))
    assert list(b.keys()) == every + ["index"]
