"""The DeepLakeDataLoader chain: every method, parameter and ValueError of the reference
(shared/seed/dataloader-api.txt) and LOADER_SEMANTICS.md, checked on real data."""

import numpy as np
import pytest

import deeplake_loader as dl
from deeplake_loader.errors import TensorDoesNotExistError

from .conftest import CLASSES, N, image_for, rows_of


def all_rows(loader):
    return [r for b in loader for r in rows_of(b)]


def test_chain_calls_return_new_objects_and_order_is_free(loader_ds):
    base = loader_ds.dataloader()
    a = base.pytorch().batch(4).shuffle().transform({"labels": None}).offset(3)
    assert a is not base and base.config.batch_size == 1 and not base.config.shuffle
    assert a.config.batch_size == 4 and a.config.shuffle and a.config.offset == 3 and a.config.mode == "pytorch"
    import torch

    assert isinstance(a, torch.utils.data.DataLoader)


@pytest.mark.parametrize("first, second, message", [
    (lambda l: l.batch(2), lambda l: l.batch(3), "batch size is already set"),
    (lambda l: l.shuffle(), lambda l: l.shuffle(), "shuffle is already set"),
    (lambda l: l.shuffle(False), lambda l: l.shuffle(), "shuffle is already set"),
    (lambda l: l.offset(0), lambda l: l.offset(2), "offset is already set"),
    (lambda l: l.transform(lambda s: s), lambda l: l.transform(lambda s: s), "transform is already set"),
    (lambda l: l.pytorch(), lambda l: l.pytorch(), r"already called \.pytorch\(\)"),
    (lambda l: l.numpy(), lambda l: l.numpy(), r"already called \.numpy\(\)"),
    (lambda l: l.tensorflow(), lambda l: l.tensorflow(), r"already called \.tensorflow\(\)"),
    (lambda l: l.pytorch(), lambda l: l.numpy(), r"Can't call \.numpy\(\) after \.pytorch\(\)"),
    (lambda l: l.numpy(), lambda l: l.tensorflow(), r"Can't call \.tensorflow\(\) after \.numpy\(\)"),
    (lambda l: l.tensorflow(), lambda l: l.pytorch(), r"Can't call \.pytorch\(\) after \.tensorflow\(\)"),
])
def test_called_twice_raises(loader_ds, first, second, message):
    loader = first(loader_ds.dataloader())
    with pytest.raises(ValueError, match=message):
        second(loader)


@pytest.mark.parametrize("call, name", [
    (lambda l: l.batch(0), "batch_size"), (lambda l: l.batch(-1), "batch_size"), (lambda l: l.batch(2.5), "batch_size"),
    (lambda l: l.offset(-1), "offset"), (lambda l: l.pytorch(num_workers=-1), "num_workers"),
    (lambda l: l.pytorch(num_threads=0), "num_threads"), (lambda l: l.numpy(prefetch_factor=0), "prefetch_factor"),
    (lambda l: l.pytorch(decode_method={"images": "jpeg"}), "decode_method jpeg not supported for tensor images"),
    (lambda l: l.shuffle(buffer_size=0), "buffer_size"),
])
def test_bad_values_raise_at_the_call_naming_them(loader_ds, call, name):
    with pytest.raises(ValueError, match=name):
        call(loader_ds.dataloader())


@pytest.mark.parametrize("call", [
    lambda l: l.pytorch(tensors=["nope"]), lambda l: l.transform({"nope": None}),
    lambda l: l.numpy(decode_method={"nope": "numpy"}),
])
def test_unknown_tensor_lists_existing_ones(loader_ds, call):
    with pytest.raises(TensorDoesNotExistError) as e:
        call(loader_ds.dataloader())
    assert isinstance(e.value, KeyError)
    assert "Tensor 'nope' does not exist" in str(e.value) and "'images'" in str(e.value)


def test_index_is_not_a_tensor(loader_ds):
    with pytest.raises(ValueError, match="index is not a tensor, to get index, pass return_index=True"):
        loader_ds.dataloader().pytorch(tensors=["images", "index"])


def test_transform_dict_and_tensors_conflict_either_order(loader_ds):
    """deeplake's texts (scripts may match on them)."""
    with pytest.raises(ValueError, match=r"Tensors have already been specified by passing a dictionary to "
                                         r"\.transform\(\) method"):
        loader_ds.dataloader().transform({"labels": None}).pytorch(tensors=["labels"])
    with pytest.raises(ValueError, match=r"Tensors have already been specified in the \.pytorch method"):
        loader_ds.dataloader().pytorch(tensors=["labels"]).transform({"labels": None})


def test_pil_only_for_jpeg_png(loader_ds):
    """deeplake's text, listing what the tensor supports ('data' too)."""
    with pytest.raises(ValueError, match=r"decode_method pil not supported for tensor labels\. Supported methods for "
                                         r"this tensor are \{'data', 'numpy', 'tobytes'\}"):
        loader_ds.dataloader().pytorch(decode_method={"labels": "pil"})


@pytest.mark.parametrize("bs, drop, want", [(1, False, N), (7, False, 8), (7, True, 7), (50, True, 1), (64, True, 0)])
def test_len(loader_ds, bs, drop, want):
    loader = loader_ds.dataloader().batch(bs, drop_last=drop).numpy(tensors=["labels"])
    assert len(loader) == want
    batches = list(loader)
    assert len(batches) == want
    if want and drop:
        assert all(len(b) == bs for b in batches)  # .numpy(): a list of samples


def test_len_ignores_offset_and_follows_views(loader_ds):
    assert len(loader_ds.dataloader().batch(10).offset(7)) == 5
    assert len(loader_ds[5:25].dataloader().batch(10)) == 2


def test_default_order_and_batch_format(loader_ds):
    batches = list(loader_ds.dataloader().batch(8).pytorch(tensors=["images", "labels", "caption", "vec"]))
    import torch

    b = batches[0]
    assert list(b.keys()) == ["images", "labels", "caption", "vec", "index"]
    assert b["images"].dtype == torch.uint8 and tuple(b["images"].shape) == (8, 24, 32, 3)
    assert b["labels"].dtype == torch.int64 and tuple(b["labels"].shape) == (8, 1)
    assert b["vec"].dtype == torch.int32  # uint16 widened
    assert b["caption"] == [f"row {i}" for i in range(8)]
    assert all_rows(batches) == list(range(N))
    for i in range(8):
        assert np.array_equal(b["images"][i].numpy(), image_for(i))
        assert int(b["labels"][i]) == i % 4
    assert len(batches[-1]["labels"]) == N % 8


def test_iterating_a_batch_yields_values_in_tensor_order(loader_ds):
    for images, labels, index in loader_ds.dataloader().batch(10).pytorch(tensors=["images", "labels"]):
        assert images.shape[0] == labels.shape[0] == index.shape[0] == 10
        assert index.reshape(-1).tolist()[0] % 10 == 0
        break


def test_offset_wraps_around(loader_ds):
    assert "index" not in next(iter(loader_ds.dataloader().offset(46).batch(5).numpy(tensors=["labels"])))[0]
    rows = all_rows(loader_ds.dataloader().offset(46).batch(5).pytorch(tensors=["labels"]))
    assert rows == [46, 47, 48, 49] + list(range(46))


def test_views_give_source_row_indices(loader_ds):
    view = loader_ds[[40, 3, 17]]
    batch = next(iter(view.dataloader().batch(3).pytorch(tensors=["labels", "caption"])))
    assert rows_of(batch) == [40, 3, 17]
    assert [int(x) for x in batch["labels"].reshape(-1)] == [0, 3, 1]
    assert batch["caption"] == ["row 40", "row 3", "row 17"]


def test_transform_callable_with_kwargs(loader_ds):
    def tf(sample, add):
        return {"v": sample["vec"].astype(np.int64) + add, "label": int(sample["labels"][0])}

    batch = next(iter(loader_ds.dataloader().transform(tf, add=100).batch(4).numpy()))
    assert [s["v"].tolist() for s in batch] == [[100, 100], [101, 102], [102, 104], [103, 106]]
    assert [s["label"] for s in batch] == [0, 1, 2, 3]
    batch = next(iter(loader_ds.dataloader().transform(tf, add=100).batch(4).pytorch()))
    assert batch["v"].tolist() == [[100, 100], [101, 102], [102, 104], [103, 106]]
    assert batch["label"].tolist() == [0, 1, 2, 3]


def test_transform_dict_chooses_tensors(loader_ds):
    """The batch holds exactly the dict's keys in its order; index only where the dict names it
    (LOADER_SEMANTICS.md, "What a transform sees and returns")."""
    batch = next(iter(loader_ds.dataloader().transform({"images": lambda x: x[:2, :2].copy(), "labels": None})
                      .batch(4).pytorch()))
    assert list(batch.keys()) == ["images", "labels"]
    assert tuple(batch["images"].shape) == (4, 2, 2, 3)
    batch = next(iter(loader_ds.dataloader().transform({"labels": None, "index": None, "vec": None})
                      .batch(4).pytorch()))
    assert list(batch.keys()) == ["labels", "index", "vec"]
    assert batch["index"].reshape(-1).tolist() == [0, 1, 2, 3] and batch["index"].dtype == torch_int64()


def test_tensors_and_return_index(loader_ds):
    batch = next(iter(loader_ds.dataloader().batch(4).pytorch(tensors=["caption"], return_index=False)))
    assert list(batch.keys()) == ["caption"]


def test_decode_methods(jpeg_ds):
    from PIL import Image

    raw = jpeg_ds.images[3].tobytes()
    loader = jpeg_ds.dataloader().batch(4).numpy(tensors=["images"], decode_method={"images": "tobytes"})
    assert next(iter(loader))[3]["images"] == raw and raw[:2] == b"\xff\xd8"
    loader = jpeg_ds.dataloader().batch(4).numpy(tensors=["images"], decode_method={"images": "pil"})
    ims = [s["images"] for s in next(iter(loader))]
    assert all(isinstance(im, Image.Image) for im in ims) and ims[1].size == (60, 48)
    # pytorch: ragged heights cannot stack without a transform -> a clear error naming the tensor;
    # numpy: a list of samples, each with its own image
    with pytest.raises(Exception, match="images"):
        next(iter(jpeg_ds.dataloader().batch(4).pytorch(tensors=["images"])))
    ims = [s["images"] for s in next(iter(jpeg_ds.dataloader().batch(4).numpy(tensors=["images"])))]
    assert isinstance(ims, list) and [im.shape for im in ims] == [jpeg_ds.images[i].numpy().shape for i in range(4)]


def test_pil_path_with_pillow_transforms(jpeg_ds):
    """The torchvision-style path: PIL images in, a transform that resizes, tensors out."""
    from PIL import Image

    def to_array(im):
        return np.asarray(im.convert("L").resize((16, 16), Image.BILINEAR))

    loader = (jpeg_ds.dataloader().transform({"images": to_array, "labels": None}).batch(5)
              .pytorch(decode_method={"images": "pil"}))
    batches = list(loader)
    assert len(batches) == 4 and tuple(batches[0]["images"].shape) == (5, 16, 16)


def test_collate_fn(loader_ds):
    def collate(samples):
        return {"n": len(samples), "captions": " | ".join(s["caption"] for s in samples)}

    out = next(iter(loader_ds.dataloader().batch(3).pytorch(tensors=["caption"], collate_fn=collate)))
    assert out["n"] == 3 and out["captions"] == "row 0 | row 1 | row 2"


def test_mismatched_shapes_name_the_tensor(loader_ds):
    for mode in ("pytorch", "tensorflow"):
        with pytest.raises(Exception, match="'ragged'.*shapes"):
            next(iter(getattr(loader_ds.dataloader().batch(5), mode)(tensors=["ragged"])))


def test_sample_by_weights_list_and_array(loader_ds):
    dl.random.seed(3)
    w = np.zeros(N)
    w[[5, 9]] = [1, 3]
    rows = all_rows(loader_ds.dataloader().sample_by(w, size=400).batch(50).pytorch(tensors=["labels"]))
    assert len(rows) == 400 and set(rows) == {5, 9}
    assert 0.65 < rows.count(9) / 400 < 0.85
    # without replacement: deeplake's weighted reordering of every row (weight-0 rows last, in row order)
    rows = all_rows(loader_ds.dataloader().sample_by(list(w), replace=False).batch(50).pytorch(tensors=["labels"]))
    assert sorted(rows[:2]) == [5, 9] and rows[2:] == [r for r in range(N) if r not in (5, 9)]
    with pytest.raises(ValueError, match="weights"):
        loader_ds.dataloader().sample_by([1, 2, 3])
    with pytest.raises(ValueError, match="weights should be 1 dimensional array"):
        loader_ds.dataloader().sample_by(np.ones((N, 1)))


def test_query_and_string_sample_by(loader_ds):
    rows = all_rows(loader_ds.dataloader().query("select * where labels != 1").batch(100).pytorch(tensors=["labels"]))
    assert rows == [i for i in range(N) if i % 4 != 1]
    rows = all_rows(loader_ds.dataloader().query("select * where labels == 'two'").batch(100).pytorch(tensors=["labels"]))
    assert rows == [i for i in range(N) if i % 4 == 2]
    dl.random.seed(1)
    rows = all_rows(loader_ds.dataloader().sample_by("max_weight(labels == 1: 10, labels == 2: 5)", size=600)
                    .batch(100).pytorch(tensors=["labels"]))
    labels = np.array(rows) % 4
    assert set(labels.tolist()) == {1, 2} and 0.58 < (labels == 1).mean() < 0.75


def test_empty_tensor_is_named(tmp_path):
    ds = dl.empty(str(tmp_path / "e"))
    with ds:
        ds.create_tensor("x", dtype="int32")
        ds.create_tensor("nothing", dtype="int32")
        ds.x.extend([np.array([i], np.int32) for i in range(3)])
    from deeplake_loader.util.exceptions import EmptyTensorError

    with pytest.raises(EmptyTensorError, match=r"empty tensor nothing .*tensors="):
        next(iter(ds.dataloader().pytorch(tensors=["x", "nothing"])))
    assert len(list(ds.dataloader().pytorch(tensors=["x"]))) == 3


def torch_int64():
    import torch

    return torch.int64
