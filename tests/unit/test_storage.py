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
