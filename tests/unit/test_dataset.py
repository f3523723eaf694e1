"""The Dataset/Tensor API over datasets written through it: views, info, summary, groups,
write wiring (with/flush/extend atomicity/commit), errors."""

import io
import itertools

import numpy as np
import pytest

import deeplake_loader as dl
from deeplake_loader.errors import (DatasetExistsError, DatasetNotFoundError, DeepLakeLoaderError, ReadOnlyError,
                                    TensorDoesNotExistError)

_names = (f"mem://h1-ds-{i}" for i in itertools.count())


@pytest.fixture
def ds():
    d = dl.empty(next(_names))
    d.create_tensor("x", dtype="int32")
    d.create_tensor("labels", htype="class_label", class_names=["cat", "dog", "fish"])
    d.create_tensor("caption", htype="text")
    d.create_tensor("grp/v", dtype="float32")
    with d:
        for i in range(20):
            d.append({"x": np.full((i % 3 + 1,), i, np.int32), "labels": i % 3, "caption": f"row {i}",
                      "grp/v": np.array([i / 2], np.float32)})
    return d


def test_create_append_read(ds):
    assert len(ds) == 20
    assert sorted(ds.tensors) == ["caption", "grp/v", "labels", "x"]
    assert ds.labels.htype == "class_label" and ds.labels.info.class_names == ["cat", "dog", "fish"]
    assert ds["x"][4].numpy().tolist() == [4, 4]
    assert ds.x.dtype == np.int32
    assert ds.x.shape == (20, None)
    assert ds.labels.numpy().reshape(-1).tolist() == [i % 3 for i in range(20)]
    assert ds.caption[3].numpy().tolist() == ["row 3"]
    assert ds.grp.v[6].numpy().tolist() == [3.0]
    assert ds["grp"]["v"].numpy().shape == (20, 1)
    assert [a.tolist() for a in ds.x[:3].numpy(aslist=True)] == [[0], [1, 1], [2, 2, 2]]
    with pytest.raises(DeepLakeLoaderError, match="aslist"):
        ds.x.numpy()


def test_views_compose_and_remember_rows(ds):
    v = ds[2:18:2]
    assert v.index_rows.dtype == np.int64 and v.index_rows.tolist() == list(range(2, 18, 2))
    w = v[[5, 0, -1]]
    assert w.index_rows.tolist() == [12, 2, 16]
    assert w.labels.numpy().reshape(-1).tolist() == [0, 2, 1]
    assert len(w) == 3 and len(ds) == 20
    s = w[1]
    assert s.x.numpy().tolist() == [2, 2, 2] and s.index_rows.tolist() == [2]
    assert ds[::-1].index_rows[0] == 19
    assert ds[np.arange(20) % 5 == 0].index_rows.tolist() == [0, 5, 10, 15]
    assert ds.index_rows is None
    assert ds.x[[3, 1]][1].numpy().tolist() == [1, 1]
    with pytest.raises(IndexError):
        ds[20]
    with pytest.raises(IndexError):
        v[[8]]
    assert [r.caption.numpy()[0] for r in ds[0:3]] == ["row 0", "row 1", "row 2"]


def test_data_text_and_class_names(ds):
    d = ds.labels[4].data()
    assert d["value"].tolist() == [1] and d["text"] == ["dog"]
    assert ds.labels[:2].data()["text"] == [["cat"], ["dog"]]


def test_info_persists(ds):
    ds.info.update(description="toy")
    ds.labels.info.update(extra=1)
    again = dl.load(ds.path)
    assert again.info.description == "toy"
    assert again.labels.info["extra"] == 1
    assert again.labels.info.class_names == ["cat", "dog", "fish"]


def test_summary_table(ds, capsys):
    ds.summary()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"Dataset(path='{ds.path}', tensors=['caption', 'grp/v', 'labels', 'x'])"
    assert lines[1] == ""
    assert lines[2].split() == ["tensor", "htype", "shape", "dtype", "compression"]
    assert lines[3].split() == ["-------"] * 5
    rows = {ln.split()[0]: ln.split() for ln in lines[4:] if ln.strip()}
    assert rows["labels"] == ["labels", "class_label", "(20,", "1)", "uint32", "None"]
    assert rows["x"] == ["x", "generic", "(20,", "1:3)", "int32", "None"]
    assert rows["caption"][-2:] == ["str", "None"]
    assert len({len(ln) for ln in lines[3:] if ln.strip()}) == 1  # every row as wide as the divider


def test_extend_is_atomic(ds):
    # the bad sample is the last one of the last column: nothing of the other columns may be written
    with pytest.raises(DeepLakeLoaderError, match="sample 1") as e:
        ds.extend({"x": [np.zeros(2, np.int32), np.zeros(2, np.int32)], "caption": ["a", "b"],
                   "grp/v": [np.zeros(1, np.float32)] * 2, "labels": [1, {"not": "a label"}]})
    assert "labels" in str(e.value)
    assert len(ds) == 20 and len(dl.load(ds.path)) == 20
    assert [len(t) for t in dl.load(ds.path).tensors.values()] == [20] * 4
    with pytest.raises(ValueError, match="different lengths"):
        ds.extend({"x": [np.zeros(1, np.int32)], "labels": [1, 2]})
    with pytest.raises(TensorDoesNotExistError):
        ds.extend({"nope": [1]})


def test_reads_flush_pending_writes(ds):
    with ds:
        ds.labels.extend([2, 2])
        ds.x.extend([np.zeros(1, np.int32)] * 2)
        assert len(ds.labels) == 22  # the read inside `with` sees the pending rows
        assert ds.labels[21].numpy().tolist() == [2]
    assert len(dl.load(ds.path).labels) == 22


def test_commit_and_load_old_commit(ds):
    first = ds.commit("twenty rows")
    ds.labels.append(0)
    assert len(ds.labels) == 21
    old = dl.load(ds.path, commit=first)
    assert len(old.labels) == 20
    old.labels.append(1)  # as deeplake: a write at a commit goes to a new branch auto_<id> made there
    assert old.branch.startswith("auto_") and len(old.labels) == 21 and old.labels[20].numpy().tolist() == [1]
    assert len(dl.load(ds.path).labels) == 21 and dl.load(ds.path).labels[20].numpy().tolist() == [0]
    assert len(dl.load(ds.path, branch=old.branch).labels) == 21


def test_read_only_and_views_refuse_writes(ds):
    ro = dl.load(ds.path, read_only=True)
    with pytest.raises(ReadOnlyError):
        ro.labels.append(1)
    with pytest.raises(ReadOnlyError):
        ds[:3].labels.append(1)


def test_tobytes_is_stored_file(tmp_path):
    from PIL import Image

    img = np.random.default_rng(0).integers(0, 255, (12, 10, 3), dtype=np.uint8)
    p = tmp_path / "a.png"
    Image.fromarray(img).save(p)
    d = dl.empty(next(_names))
    d.create_tensor("images", htype="image", sample_compression="png")
    d.images.append(dl.read(p))
    assert d.images[0].tobytes() == p.read_bytes()
    assert np.array_equal(d.images[0].numpy(), img)
    assert d.images.shape == (1, 12, 10, 3)
    with pytest.raises(DeepLakeLoaderError, match="single sample"):
        d.images.tobytes()


def test_paths_and_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError):
        dl.load(tmp_path / "nothing")
    assert not dl.exists(tmp_path / "nothing")
    d = dl.dataset(tmp_path / "new")
    assert dl.exists(tmp_path / "new") and len(d) == 0
    with pytest.raises(DatasetExistsError):
        dl.empty(tmp_path / "new")
    d.create_tensor("a")
    assert list(dl.dataset(tmp_path / "new").tensors) == ["a"]
    assert list(dl.empty(tmp_path / "new", overwrite=True).tensors) == []
    with pytest.raises(TensorDoesNotExistError):
        d["missing"]
    with pytest.raises(AttributeError):
        d.missing


def test_reader_contract(ds):
    r = ds._reader("labels")
    assert r.column().reshape(-1).tolist() == [i % 3 for i in range(20)]
    assert r.column([5, 1]).reshape(-1).tolist() == [2, 1]
    assert [v.tolist() for v in r.read_many([0, 4])] == [[0], [1]]
    plan = r.chunk_plan(np.array([3, 0, 7]))
    covered = np.sort(np.concatenate([p for _, p, _ in plan]))
    assert covered.tolist() == [0, 1, 2]
    assert all(name is not None for name, _, _ in plan)
    raw = r.stored_bytes([7])[0]
    assert isinstance(raw, memoryview) and np.frombuffer(raw, np.uint32).tolist() == [1]
    assert r.shape_of(3) == (1,)
    col = ds._reader("x").column([0, 1])
    assert isinstance(col, list) and [c.tolist() for c in col] == [[0], [1, 1]]
    with pytest.raises(IndexError, match="out of range"):
        r.read(20)


def test_query_returns_a_view_of_source_rows(ds):
    v = ds.query("select * where labels == 1")
    assert v.index_rows.tolist() == [i for i in range(20) if i % 3 == 1]
    w = ds[10:].query("select * where labels == 0")
    assert w.index_rows.tolist() == [12, 15, 18]  # ids in the source dataset, not in the view
    assert w.labels.numpy().reshape(-1).tolist() == [0, 0, 0]
    assert len(ds.query("select * where labels == 7")) == 0


def test_dataloader_hook(ds):
    loader = ds[:4].dataloader()
    assert type(loader).__name__ == "DeepLakeDataLoader"


def test_data_text_like_deeplake():
    d = dl.empty(next(_names))
    d.create_tensor("named", htype="class_label", class_names=["a", "b"])
    d.create_tensor("plain", htype="class_label")
    d.named.extend([1, 5])
    d.plain.extend([3, 0])
    assert d.named[1].data()["text"] == [None]  # no class name for label 5
    assert d.named.data()["text"] == [["b"], [None]]
    assert "text" not in d.plain[0].data()
    assert d.plain[0].data()["value"].tolist() == [3]


def test_view_composition_matches_numpy_indexing():
    """Random chains of int-list / slice / bool-mask indexes give the rows NumPy indexing gives."""
    from hypothesis import given, settings, strategies as st

    d = dl.empty(next(_names))
    d.create_tensor("i", dtype="int64")
    d.i.extend(np.arange(30, dtype=np.int64))

    def index_for(n):
        return st.one_of(
            st.builds(slice, st.integers(-35, 35) | st.none(), st.integers(-35, 35) | st.none(),
                      st.sampled_from([None, 1, 2, 3, -1, -2])),
            st.lists(st.integers(-n, n - 1), max_size=8) if n else st.just([]),
            st.lists(st.booleans(), min_size=n, max_size=n),
        )

    @settings(max_examples=150, deadline=None)
    @given(st.data())
    def run(data):
        view, ref = d, np.arange(30)
        for _ in range(data.draw(st.integers(1, 3))):
            idx = data.draw(index_for(len(ref)))
            is_mask = isinstance(idx, list) and idx and isinstance(idx[0], bool)
            arg = np.array(idx, dtype=bool) if is_mask else idx
            view, ref = view[arg], ref[np.asarray(arg, dtype=np.int64) if isinstance(arg, list) else arg]
            assert view.index_rows.tolist() == ref.tolist()
            assert len(view) == len(ref)
        if len(ref):
            assert view.i.numpy().reshape(-1).tolist() == ref.tolist()

    run()
