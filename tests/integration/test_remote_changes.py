"""Objects rewritten under an opened dataset, against a real S3 endpoint (moto on loopback): another
writer appends to a dataset (Deep Lake rewrites the tail chunk in place, larger) while a
long-lived dataset object, its loader and the on-disk chunk cache still hold the folder listing of
before. Every read is checked against what the server says (storage/remote.py ``read_checked``,
storage/direct.py ``Changed``): the new bytes are read after a fresh LIST, or a clear error comes;
never a truncated chunk, and the cache never keeps one.

Each case runs with the direct range reads (Content-Range's total and the ETag of the response)
and through s3fs ($DEEPLAKE_LOADER_DIRECT_READS=0: the last range asks for one byte past the
listed end).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.common.loader import as_lists
from tests.common.remote import row_image

pytest.importorskip("moto.server", reason="moto[server] provides the local S3 endpoint")
pytest.importorskip("s3fs", reason="s3fs serves s3:// paths")

PATHS = ["direct", "s3fs"]


@pytest.fixture(params=PATHS)
def read_path(request, monkeypatch):
    if request.param == "s3fs":
        monkeypatch.setenv("DEEPLAKE_LOADER_DIRECT_READS", "0")
    return request.param


def _provider(moto_s3, folder):
    from deeplake_loader.storage.remote import FsspecProvider

    creds = moto_s3.creds()
    return FsspecProvider(f"s3://{moto_s3.bucket}/{folder}", key=creds["aws_access_key_id"],
                          secret=creds["aws_secret_access_key"], client_kwargs={"endpoint_url": creds["endpoint_url"]})


def _blob(seed, n):
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("new_size", [3_500_000, 2_000_000, 10])
def test_an_object_rewritten_since_its_listing_is_read_anew(moto_s3, read_path, new_size):
    """The object grew (an appended tail chunk), shrank, or shrank below the second range (416)
    after its folder was listed: read_blob gives the new object whole, and the listing now says so."""
    p = _provider(moto_s3, f"changes_{read_path}_{new_size}")
    p.fs  # noqa: B018 - opens the filesystem (and the direct reader, where it is on)
    assert (p._direct is not None) == (read_path == "direct")
    key = f"changes_{read_path}_{new_size}/obj.bin"
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=_blob(1, 3_000_000))
    assert p.size_of("obj.bin") == 3_000_000
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=_blob(2, new_size))
    got = p.read_blob("obj.bin", parts=3)
    assert bytes(memoryview(got)) == _blob(2, new_size)
    assert p.size_of("obj.bin") == new_size
    assert (p._direct is not None) == (read_path == "direct")  # the object changed, not the endpoint


def test_an_object_rewritten_with_the_same_size_is_cached_under_its_new_etag(moto_s3, tmp_path):
    """Same length, other bytes: the direct path sees the response's ETag differ from the listing's,
    lists again, and the chunk cache keeps the bytes under the new ETag, not the listed one."""
    from deeplake_loader.storage.cache import CachingProvider

    p = CachingProvider(_provider(moto_s3, "same_size"), 16, str(tmp_path))
    key = "same_size/obj.bin"
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=_blob(1, 2_000_000))
    old_tag = p.inner.stat("obj.bin")[1]
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=_blob(2, 2_000_000))
    assert bytes(memoryview(p.read_blob("obj.bin", parts=2))) == _blob(2, 2_000_000)
    new_tag = _etag(moto_s3, f"s3://lake/{key}")
    assert new_tag != old_tag and p.inner.stat("obj.bin")[1] == new_tag
    assert p.cache.get("obj.bin", old_tag) is None
    assert p.cache.get("obj.bin", new_tag) == _blob(2, 2_000_000)


def test_a_listing_that_never_catches_up_is_a_clear_error(moto_s3, read_path, monkeypatch):
    """A store whose listings keep giving the old size (as an eventually consistent one may): the
    object is read REREADS + 1 times, each after a new LIST, then RemoteReadError names the URL and
    both sizes; nothing short is returned."""
    from deeplake_loader.errors import RemoteReadError
    from deeplake_loader.storage import remote

    p = _provider(moto_s3, f"stale_{read_path}")
    key = f"stale_{read_path}/obj.bin"
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=_blob(1, 1_500_000))
    old = p.listing("")
    moto_s3.client.put_object(Bucket=moto_s3.bucket, Key=key, Body=_blob(2, 1_600_000))
    lists = []
    real = remote.FsspecProvider.listing

    def stale(self, folder):
        lists.append(folder)
        real(self, folder)  # a real LIST, whose answer is then ignored
        return old

    monkeypatch.setattr(remote.FsspecProvider, "listing", stale)
    with pytest.raises(RemoteReadError) as info:
        p.read_blob("obj.bin")
    msg = str(info.value)
    assert f"s3://lake/stale_{read_path}/obj.bin" in msg and "3 times" in msg and "1500000" in msg
    assert len(lists) == 1 + remote.REREADS


def image(i):
    """Row i's image, of a size that depends on i: appending rows grows the chunk's header (its
    shape and byte-position tables), so a chunk cut at its old length loses bytes of old rows."""
    return row_image(i, 20 + i % 5, 30 + i % 3)


def _write(url, creds, rows):
    import deeplake_loader as dl

    ds = dl.empty(url, creds=creds, overwrite=True)
    with ds:
        ds.create_tensor("images", htype="image", sample_compression="png", max_chunk_size=1_000_000)
        ds.create_tensor("labels", htype="class_label")
        ds.extend({"images": [image(i) for i in rows], "labels": [i % 7 for i in rows]})


def _epoch(loader):
    rows = []
    for batch in loader:
        for row, img in zip(batch["index"].reshape(-1).tolist(), batch["images"]):
            np.testing.assert_array_equal(img, image(row), err_msg=f"row {row}")
            rows.append(row)
    return rows


@pytest.mark.parametrize("cache", ["none", "disk", "enabled_later"])
def test_a_long_lived_dataset_reads_a_tail_chunk_appended_to_by_another_writer(moto_s3, read_path, tmp_path,
                                                                               monkeypatch, cache):
    """Open a dataset and its loader and read an epoch; another writer appends (the tail chunk is
    rewritten larger under the same key); read two more epochs through the same dataset and the
    same loader, and every sample by itself: every row of the dataset as opened, with its own
    pixels. The on-disk cache (on from the start, serving the chunk as it was; or turned on after
    the append, as ``ds.pytorch(use_local_cache=True)`` does, so the stale listing meets the new
    object) holds under each ETag only the object that had that ETag, never one cut short."""
    import deeplake_loader as dl
    from deeplake_loader.storage.cache import ChunkCache

    monkeypatch.setenv("DEEPLAKE_LOADER_CACHE_DIR", str(tmp_path / "cache"))
    url = f"s3://lake/appended_{read_path}_{cache}"
    _write(url, moto_s3.creds(), range(12))
    ds = dl.load(url, read_only=True, creds=moto_s3.creds(), memory_cache_size=0,
                 local_cache_size=16 if cache == "disk" else 0)
    loader = ds.dataloader().batch(5).pytorch(collate_fn=as_lists)
    assert _epoch(loader) == list(range(12))
    reader = ds._reader("images")
    (tail,) = [reader.vs.chunk_key(reader.key, reader.enc.name(c)) for c in reader.enc.table[:, 0]]
    old_bytes, old_tag = moto_s3.get(f"{url}/{tail}"), ds.storage.inner.stat(tail)[1]

    writer = dl.load(url, creds=moto_s3.creds())
    writer.extend({"images": [image(i) for i in range(12, 20)], "labels": [i % 7 for i in range(12, 20)]})
    new_bytes = moto_s3.get(f"{url}/{tail}")  # the same key, rewritten larger
    assert len(new_bytes) > len(old_bytes)
    if cache == "enabled_later":
        ds._enable_local_cache(16)

    for epoch in range(2):
        assert _epoch(loader) == list(range(12)), epoch
    for i in range(12):
        np.testing.assert_array_equal(ds.images[i].numpy(), image(i))
    loader.close()
    if cache == "none":  # the read found the object changed: the folder was listed again
        assert ds.storage.inner.stat(tail) == (len(new_bytes), _etag(moto_s3, f"{url}/{tail}"))
    else:
        disk = ChunkCache(url, 16_000_000)
        new_tag = _etag(moto_s3, f"{url}/{tail}")
        assert disk.get(tail, old_tag) in (None, old_bytes)  # never the new object cut short
        assert disk.get(tail, new_tag) in (None, new_bytes)
        if cache == "enabled_later":
            assert disk.get(tail, new_tag) == new_bytes  # read again after a new LIST, kept under its ETag
    again = dl.load(url, read_only=True, creds=moto_s3.creds(), local_cache_size=16 if cache != "none" else 0)
    assert _epoch(again.dataloader().batch(5).pytorch(collate_fn=as_lists)) == list(range(20))


def _etag(moto_s3, url):
    bucket, key = url[len("s3://"):].split("/", 1)
    return moto_s3.client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')


APPEND = """
import deeplake, numpy as np
url, endpoint, start, stop = ARGS[0], ARGS[1], int(ARGS[2]), int(ARGS[3])
creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "endpoint_url": endpoint}
def image(i):
    y, x = np.mgrid[0:20 + i % 5, 0:30 + i % 3]
    return np.stack([(x * 3 + i * 5) % 256, (y * 7 + i) % 256, np.full_like(x, (i * 11 + i // 256) % 256)],
                    -1).astype(np.uint8)
ds = deeplake.load(url, creds=creds, verbose=False)
with ds:
    for i in range(start, stop):
        ds.append({"images": image(i), "labels": i % 7})
emit({"len": len(ds)})
"""


@pytest.mark.dl3
def test_deeplake_appending_under_an_opened_dataset(s3, moto_s3, read_path):
    """The second writer is deeplake 3.9.52 itself: it appends to the tail chunk of a dataset we
    have open (rewriting it larger under the same key); our dataset and loader keep giving every
    row they know with its own pixels, and a new load() sees deeplake's rows too."""
    import deeplake_loader as dl
    from tests.common import dl3

    endpoint, creds = s3
    url = f"s3://lake/appended_by_deeplake_{read_path}"
    _write(url, creds, range(12))
    ds = dl.load(url, read_only=True, creds=creds, memory_cache_size=0)
    loader = ds.dataloader().batch(5).pytorch(collate_fn=as_lists)
    assert _epoch(loader) == list(range(12))
    reader = ds._reader("images")
    (tail,) = [reader.vs.chunk_key(reader.key, reader.enc.name(c)) for c in reader.enc.table[:, 0]]
    before = moto_s3.get(f"{url}/{tail}")
    assert dl3.run_dl3(APPEND, url, endpoint, 12, 20)["len"] == 20
    assert len(moto_s3.get(f"{url}/{tail}")) > len(before)  # deeplake rewrote the tail chunk in place
    for epoch in range(2):
        assert _epoch(loader) == list(range(12)), epoch
    loader.close()
    again = dl.load(url, read_only=True, creds=creds)
    assert _epoch(again.dataloader().batch(5).pytorch(collate_fn=as_lists)) == list(range(20))
