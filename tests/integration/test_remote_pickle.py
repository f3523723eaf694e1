"""Remote datasets and loaders pickle (storage/remote.py, direct.py, cache.py, linkstats.py,
dataloader.py): what travels is what reopens them (URL, creds and options, retries, the cache's
settings, the loader's chain and place), never a lock, socket, thread or listing; the copy opens
its own connections when it first reads. Against a real S3 endpoint (moto on loopback), in fresh
spawned processes, and through a torch DataLoader rebuilt from the loader's parts with two spawned
workers (what Accelerate builds), which pickles the dataset for each worker."""

from __future__ import annotations

import multiprocessing as mp
import pickle

import numpy as np
import pytest

from tests.common.remote import records, records_of_pickled, row_image, write_row_dataset

pytest.importorskip("moto.server", reason="moto[server] provides the local S3 endpoint")
pytest.importorskip("s3fs", reason="s3fs serves s3:// paths")

N = 60


@pytest.fixture(scope="module")
def rows_url(moto_s3, tmp_path_factory):
    url = "s3://lake/pickled_rows"
    moto_s3.upload(write_row_dataset(tmp_path_factory.mktemp("pickle") / "rows", N), url)
    return url


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPLAKE_LOADER_CACHE_DIR", str(tmp_path / "cache"))
    return str(tmp_path / "cache")


def _used(ds):
    """The dataset after reads: open connections, listings, link statistics, cache entries."""
    for i in (0, N // 2, N - 1):
        np.testing.assert_array_equal(ds.images[i].numpy(), row_image(i))
    return ds


@pytest.mark.parametrize("cache_mb", [0, 16], ids=["no_cache", "local_cache"])
def test_a_dataset_and_a_loader_over_it_pickle_and_read_the_same_in_a_fresh_process(moto_s3, rows_url, cache_dir,
                                                                                    cache_mb):
    import cloudpickle

    import deeplake_loader as dl

    ds = _used(dl.load(rows_url, read_only=True, creds=moto_s3.creds(), local_cache_size=cache_mb))
    loader = (ds.dataloader().transform({"images": lambda x: x, "labels": None, "index": None}).batch(7)
              .shuffle(buffer_size=1).pytorch())
    it = iter(loader)
    head = [next(it) for _ in range(3)]  # mid-epoch: threads, pooled memory, reads in flight
    ds_blob, loader_blob = pickle.dumps(ds), cloudpickle.dumps(loader)
    with mp.get_context("spawn").Pool(1) as pool:
        got = pool.apply(records_of_pickled, (ds_blob, loader_blob))
    want = records(ds, it)  # the rest of the epoch the pickled loader was in
    loader.close()
    assert got["fresh"] == {"fs": True, "listings": {}, "cache": ds.storage.cache.dir if cache_mb else None}
    assert got["rows"] == want["rows"]
    assert got["batches"] == want["batches"]  # the copy continues where the loader was
    seen = [r for b in records(ds, head)["batches"] for r in b[0]] + [r for b in want["batches"] for r in b[0]]
    assert sorted(seen) == list(range(N))


@pytest.mark.parametrize("cache_mb", [0, 16], ids=["no_cache", "local_cache"])
def test_a_torch_dataloader_with_two_spawned_workers_reads_an_s3_dataset(moto_s3, rows_url, cache_dir, cache_mb):
    """torch pickles loader.dataset (a RowsDataset holding the config and the dataset) for each
    spawned worker; the workers read the rows over their own connections."""
    from torch.utils.data import DataLoader

    import deeplake_loader as dl

    ds = _used(dl.load(rows_url, read_only=True, creds=moto_s3.creds(), local_cache_size=cache_mb))
    loader = ds.dataloader().batch(6).shuffle(buffer_size=1).pytorch(num_workers=2)
    loader.multiprocessing_context = "spawn"  # torch then pickles the dataset for each worker
    assert loader.multiprocessing_context.get_start_method() == "spawn"
    rebuilt = DataLoader(loader.dataset, batch_sampler=loader.batch_sampler, collate_fn=loader.collate_fn,
                         num_workers=2, multiprocessing_context=loader.multiprocessing_context)
    for epoch in range(2):
        batches = list(rebuilt)
        rows = records(ds, batches)["batches"]
        assert sorted(r for b in rows for r in b[0]) == list(range(N)), epoch
    loader.close()


def test_the_providers_pickle_as_what_reopens_them(moto_s3, rows_url, cache_dir):
    """Each piece of a remote dataset's storage, used (connections kept alive, listings, a cache),
    pickles without its locks, sockets or listings; the copy carries URL, options, creds, retries,
    the cache's settings and what the link was seen to do, and reads the same bytes."""
    import deeplake_loader as dl
    from deeplake_loader.storage.direct import DirectRanges

    ds = _used(dl.load(rows_url, read_only=True, creds=moto_s3.creds(), local_cache_size=16, retries=4))
    storage = ds.storage
    inner = storage.inner
    key = "images/chunks/" + sorted(inner.listing("images/chunks"))[-1]
    whole = bytes(memoryview(inner.read_blob(key)))  # a direct read
    where = ("http", "127.0.0.1", int(moto_s3.endpoint.rsplit(":", 1)[1]))
    conn, _ = inner.direct._connection(where)  # a kept-alive connection (moto's server closes its own)
    inner.direct._keep(where, conn)
    assert inner._listings and inner.direct._idle[where] == [conn] and inner.direct._urls
    copy = pickle.loads(pickle.dumps(storage))
    c = copy.inner
    assert c is not inner and c.root == inner.root and c._options == inner._options
    assert c._options["key"] == "testing" and c._options["client_kwargs"]["endpoint_url"] == moto_s3.endpoint
    assert c.retry == inner.retry and c.retry.attempts == 4
    assert c._fs is None and c._listings == {} and c._lock is not inner._lock
    assert c.stats.latency == inner.stats.latency and c.stats._lock is not inner.stats._lock
    assert (copy.cache.dir, copy.cache.limit) == (storage.cache.dir, storage.cache.limit)
    copy.cache = None  # read over the network, through the copy's own connections
    assert bytes(memoryview(copy.read_blob(key))) == whole
    assert c.direct is not None and c.direct is not inner.direct

    reader = pickle.loads(pickle.dumps(inner.direct))
    assert isinstance(reader, DirectRanges) and reader._idle == {} and reader._urls == {}
    assert (reader.connect_timeout, reader.read_timeout) == (inner.direct.connect_timeout, inner.direct.read_timeout)


_FORKED = {}  # what a forked child finds in its copy of the parent's memory


def _in_forked_child():
    """(inherited kept-alive connections, whether the provider's lock can be taken, the records of
    every row) in a child forked while the parent held that lock and a kept-alive connection."""
    ds = _FORKED["ds"]
    inner = ds.storage.inner
    inherited = {k: len(v) for k, v in inner.direct._idle.items() if v} if inner._direct is not None else {}
    free = inner._lock.acquire(timeout=2)
    if free:
        inner._lock.release()
    return inherited, free, records(ds, [])["rows"]


def test_a_forked_child_leaves_the_parents_connections_and_locks_behind(moto_s3, rows_url):
    """torch's default start method on Linux is fork: a worker forked from a process that has read
    the dataset must not share its kept-alive sockets (both would read answers off one connection)
    nor inherit a lock a parent's thread held at the fork."""
    import deeplake_loader as dl

    ds = _used(dl.load(rows_url, read_only=True, creds=moto_s3.creds()))
    inner = ds.storage.inner
    where = ("http", "127.0.0.1", int(moto_s3.endpoint.rsplit(":", 1)[1]))
    conn, _ = inner.direct._connection(where)
    inner.direct._keep(where, conn)
    _FORKED["ds"] = ds
    try:
        with inner._lock:  # held by this thread while the child is forked
            pool = mp.get_context("fork").Pool(1)
        with pool:
            inherited, free, rows = pool.apply(_in_forked_child)
    finally:
        _FORKED.clear()
    assert inherited == {} and free
    assert rows == records(ds, [])["rows"]
    assert inner.direct._idle[where] == [conn]  # the parent keeps its own
