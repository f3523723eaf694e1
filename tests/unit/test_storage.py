import pytest

from deeplake_loader.errors import HubPathError
from deeplake_loader.storage import LocalProvider, MemoryProvider, storage_for


@pytest.fixture(params=["local", "memory", "fsspec"])
def store(request, tmp_path):
    if request.param == "local":
        return storage_for(str(tmp_path / "ds"))
    if request.param == "memory":
        return storage_for(f"mem://{request.node.name}")
    pytest.importorskip("fsspec")
    return storage_for(f"memory://{request.node.name}")


def test_put_get_range_exists_delete_list(store):
    store.put("a/b/chunks/ff", b"0123456789")
    store.put("dataset_meta.json", b"{}")
    assert store.get("a/b/chunks/ff") == b"0123456789"
    assert store.get_range("a/b/chunks/ff", 2, 5) == b"234"
    assert store.get_range("a/b/chunks/ff", 7, None) == b"789"
    assert store.exists("dataset_meta.json") and not store.exists("nope")
    assert sorted(store.list("a/")) == ["a/b/chunks/ff"]
    assert sorted(store.list()) == ["a/b/chunks/ff", "dataset_meta.json"]
    store.delete("a/b/chunks/ff")
    with pytest.raises(KeyError):
        store.get("a/b/chunks/ff")
    assert store.get_or_none("a/b/chunks/ff") is None


def test_put_replaces_whole_value(store):
    store.put("k", b"long value here")
    store.put("k", b"short")
    assert store.get("k") == b"short"


def test_scheme_dispatch(tmp_path):
    assert isinstance(storage_for(str(tmp_path)), LocalProvider)
    assert isinstance(storage_for(f"file://{tmp_path}"), LocalProvider)
    assert isinstance(storage_for("mem://x"), MemoryProvider)


def test_hub_path_explains_how_to_export():
    with pytest.raises(HubPathError, match="deepcopy"):
        storage_for("hub://activeloop/fashion-mnist-train")


def test_local_key_cannot_escape_root(tmp_path):
    store = LocalProvider(str(tmp_path / "ds"))
    with pytest.raises(KeyError, match="escapes"):
        store.get("../../etc/passwd")


def test_local_put_leaves_no_temp_files(tmp_path):
    store = LocalProvider(str(tmp_path / "ds"))
    for i in range(5):
        store.put("x/y", bytes([i]) * 100)
    assert sorted(p.name for p in (tmp_path / "ds" / "x").iterdir()) == ["y"]


def test_single_samples_of_remote_datasets_use_range_reads(tmp_path, monkeypatch):
    """t[i].numpy() on an fsspec URL reads the chunk header and the sample's bytes, not the chunk."""
    pytest.importorskip("fsspec")
    import numpy as np

    import deeplake_loader as dl
    from deeplake_loader.storage.remote import FsspecProvider

    url = f"memory://ranges_{tmp_path.name}"
    ds = dl.empty(url, overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int32")
        ds.create_tensor("t", htype="text")
        ds.extend({"x": [np.arange(i, i + 1000, dtype=np.int32) for i in range(40)], "t": [f"row {i}" for i in range(40)]})
    whole, ranges = [], []
    real_get, real_range = FsspecProvider.get, FsspecProvider.get_range
    monkeypatch.setattr(FsspecProvider, "get", lambda self, k: whole.append(k) or real_get(self, k))
    monkeypatch.setattr(FsspecProvider, "get_range", lambda self, k, a, b: ranges.append((k, a, b)) or real_range(self, k, a, b))
    again = dl.load(url, read_only=True)
    assert again.x[17].numpy().tolist() == list(range(17, 1017))
    assert again.t[33].data()["value"] == "row 33"
    assert not [k for k in whole if "/chunks/" in k]
    sample_reads = [(a, b) for k, a, b in ranges if "/chunks/" in k and a > 0]
    assert any(b - a == 4000 for a, b in sample_reads)  # one int32 sample of 1000 values


def test_fsspec_providers_pickle_as_what_reopens_them(tmp_path, monkeypatch):
    """Any fsspec URL (here memory://, whose objects live in this process) with the chunk cache on:
    the used provider pickles, and the copy, which opens its own filesystem, reads the same bytes.
    A gcs:// provider pickles with its token before anything is opened."""
    pytest.importorskip("fsspec")
    import pickle

    monkeypatch.setenv("DEEPLAKE_LOADER_CACHE_DIR", str(tmp_path / "cache"))
    store = storage_for(f"memory://pickled_{tmp_path.name}", local_cache_size=1)
    store.put("t/chunks/a", b"0123456789" * 100)
    assert store.read_blob("t/chunks/a") == b"0123456789" * 100 and store.inner.listing("t/chunks")
    copy = pickle.loads(pickle.dumps(store))
    assert copy.inner._fs is None and copy.inner._listings == {} and copy.cache.dir == store.cache.dir
    assert copy.read_blob("t/chunks/a") == b"0123456789" * 100
    assert copy.cache.hits == 1  # served from the cache the original filled
    gcs = pickle.loads(pickle.dumps(storage_for("gcs://bucket/ds", creds={"type": "service_account"})))
    assert gcs.inner._options == {"token": {"type": "service_account"}} and gcs.inner._fs is None
