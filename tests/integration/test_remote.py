"""Remote datasets over a bad network, offline: a moto S3 server behind tests/common/slowlink.py (a
loopback proxy adding latency, jitter, connections cut mid-response and stalls). Every image
encodes its row, so each batch is checked against the rows its index names.

* the fetch window changes when chunks arrive, never the rows, their order or their pixels;
* cut or stalled connections are retried: every row once, exact pixels; when every try fails the
  error names the URL, tensor, chunk and rows, after the policy's number of tries;
* the on-disk chunk cache: two processes fill one cache and agree with the source; a later
  process reads no chunk over the network; a chunk rewritten in place is not served stale.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.common.remote import row_image, write_row_dataset
from tests.common.slowlink import SlowLink

pytest.importorskip("moto.server", reason="moto[server] provides the local S3 endpoint")
pytest.importorskip("s3fs", reason="s3fs serves s3:// paths")

N = 120
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def remote_rows(moto_s3, tmp_path_factory):
    """s3 URL of a dataset of N rows (images encode their row) in ~20 small chunks."""
    local = write_row_dataset(tmp_path_factory.mktemp("remote") / "rows", N)
    url = "s3://lake/remote_rows"
    moto_s3.upload(local, url)
    return url


def _epochs(loader, epochs=1):
    """[(rows, images)] per batch over ``epochs`` epochs, each image checked against its row."""
    out = []
    for _ in range(epochs):
        for batch in loader:
            rows = np.asarray(batch["index"]).reshape(-1).tolist()
            images = np.asarray(batch["images"])
            for row, img in zip(rows, images):
                np.testing.assert_array_equal(img, row_image(row), err_msg=f"row {row}")
            out.append((rows, images))
    return out


def _rows(result):
    return [r for rows, _ in result for r in rows]


class _Recorder:
    """Wraps pipeline.window.ChunkWindow to keep every window an epoch made."""

    def __init__(self, monkeypatch):
        import deeplake_loader.pipeline as pipeline

        self.windows = []
        real = pipeline.ChunkWindow

        def make(*args, **kwargs):
            w = real(*args, **kwargs)
            self.windows.append(w)
            return w

        monkeypatch.setattr(pipeline, "ChunkWindow", make)


@pytest.mark.parametrize("shuffle", [False, True])
def test_window_size_changes_nothing(moto_s3, remote_rows, monkeypatch, shuffle):
    """fetch_window=1 and fetch_window=8 over a link whose responses finish out of order: the same
    rows in the same order with the same pixels, two epochs each."""
    import deeplake_loader as dl

    rec = _Recorder(monkeypatch)
    results = {}
    with SlowLink(moto_s3.endpoint, latency=0.002, jitter=0.03, seed=3) as link:
        for window in (1, 8):
            dl.random.seed(1234)
            ds = dl.load(remote_rows, read_only=True, creds=moto_s3.creds(link.url), fetch_window=window)
            loader = ds.dataloader().batch(10)
            loader = (loader.shuffle(buffer_size=1) if shuffle else loader).pytorch(num_threads=1)
            with loader:
                results[window] = _epochs(loader, epochs=2)
    dl.random.seed(None)
    one, many = results[1], results[8]
    assert [r for r, _ in one] == [r for r, _ in many]
    for (_, a), (_, b) in zip(one, many):
        np.testing.assert_array_equal(a, b)
    rows = _rows(one)
    assert sorted(rows[:N]) == list(range(N)) and sorted(rows[N:]) == list(range(N))
    assert (rows[:N] != list(range(N))) == shuffle
    assert max(w.peak_in_flight for w in rec.windows[:2]) == 1
    assert max(w.peak_in_flight for w in rec.windows[2:]) > 1  # the wide window did overlap reads
    if shuffle:  # the window's bytes come out of the shuffle buffer's 1 MB
        assert all(w.max_bytes == 125_000 for w in rec.windows)


def test_cut_connections_every_row_once(moto_s3, remote_rows):
    """30% of responses (metadata, listings, chunks) reset part-way through: retried, every row
    once with its own pixels."""
    import deeplake_loader as dl

    with SlowLink(moto_s3.endpoint, cut=0.3, seed=11) as link:
        ds = dl.load(remote_rows, read_only=True, creds=moto_s3.creds(link.url), retries=12)
        with ds.dataloader().batch(8).shuffle(buffer_size=1).pytorch(num_threads=1) as loader:
            rows = _rows(_epochs(loader))
        assert link.counts["cut"] >= 5
    assert sorted(rows) == list(range(N))


def test_stalled_connections_are_cut_and_retried(moto_s3, remote_rows):
    """30% of chunk responses stop mid-body and hang: the read timeout cuts them, the retry gets the
    chunk, every row arrives once."""
    import deeplake_loader as dl

    with SlowLink(moto_s3.endpoint, stall=0.3, match="/chunks/", seed=5) as link:
        ds = dl.load(remote_rows, read_only=True, creds=moto_s3.creds(link.url), retries=12,
                     config_kwargs={"read_timeout": 1})
        with ds.dataloader().batch(8).pytorch(num_threads=1) as loader:
            rows = _rows(_epochs(loader))
        assert link.counts["stalled"] >= 1
    assert rows == list(range(N))


@pytest.mark.parametrize("fault", ["cut", "stall"])
def test_every_try_failing_names_url_tensor_chunk_rows(moto_s3, remote_rows, fault):
    """Every chunk response cut (or stalled): after exactly ``retries`` tries of a chunk, a
    RemoteReadError naming the chunk's URL, the tensor, the chunk and the rows it would have served
    (not aiohttp's bare "Response payload is not completed")."""
    import deeplake_loader as dl
    from deeplake_loader.errors import RemoteReadError

    with SlowLink(moto_s3.endpoint, match="/chunks/", seed=2) as link:
        ds = dl.load(remote_rows, read_only=True, creds=moto_s3.creds(link.url), retries=3,
                     config_kwargs={"read_timeout": 1})
        link.set_faults(**{fault: 1.0})
        t0 = time.monotonic()
        with pytest.raises(RemoteReadError) as info:
            with ds.dataloader().batch(8).pytorch(num_threads=1) as loader:
                _epochs(loader)
        took = time.monotonic() - t0
    err = info.value
    msg = str(err)
    assert err.url.startswith(remote_rows + "/images/chunks/") and err.url in msg
    assert err.tensor == "images" and "tensor 'images'" in msg
    assert err.chunk.startswith("images/chunks/") and f"chunk '{err.chunk}'" in msg
    assert list(err.rows) == list(range(len(err.rows))) and len(err.rows) > 1 and "rows 0, 1, 2" in msg
    assert err.attempts == 3 and "after 3 attempts" in msg
    assert ("payload" in msg.lower() or "reset" in msg.lower()) if fault == "cut" else "timeout" in msg.lower()
    path = "/" + err.url[len("s3://"):]
    tries = [f for _, p, f in link.log if p.split("?")[0] == path]
    assert tries == [fault] * 3, tries
    assert took < 60  # a hang guard: the policy allows 3 tries, < 1 s of waits and 1 s read timeouts


CACHE_EPOCH = """
import hashlib, json, sys
import deeplake_loader as dl
url, endpoint, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "endpoint_url": endpoint}
dl.random.seed(seed)
ds = dl.load(url, read_only=True, creds=creds, local_cache_size=64)
out = {}
with ds.dataloader().batch(5).shuffle(buffer_size=1).pytorch(decode_method={"images": "tobytes"}) as loader:
    for batch in loader:
        for row, b in zip(batch["index"].reshape(-1).tolist(), batch["images"]):
            assert row not in out
            out[row] = hashlib.sha256(b).hexdigest()
print(json.dumps(out))
"""


def test_two_processes_fill_one_cache(moto_s3, remote_rows, tmp_path, monkeypatch):
    """Two processes fill one cache at once (shuffled differently, so they race on chunks); both see
    the source's bytes, every cached file is a source chunk byte for byte, and a third reader
    gets every chunk from the cache (no chunk GET on the network) with the same pixels."""
    import hashlib

    import deeplake_loader as dl
    from deeplake_loader.storage.cache import ChunkCache

    cache_dir = tmp_path / "cache"
    env = {**os.environ, "DEEPLAKE_LOADER_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(ROOT)}
    with SlowLink(moto_s3.endpoint, latency=0.005, jitter=0.02, seed=8) as link:
        procs = [subprocess.Popen([sys.executable, "-c", CACHE_EPOCH, remote_rows, link.url, str(seed)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
        outs = [p.communicate(timeout=240) for p in procs]
        for p, (_, err) in zip(procs, outs):
            assert p.returncode == 0, err[-3000:]
        source = dl.load(remote_rows, read_only=True, creds=moto_s3.creds())
        want = {i: hashlib.sha256(source.images[i].tobytes()).hexdigest() for i in range(N)}
        for stdout, _ in outs:
            assert {int(k): v for k, v in json.loads(stdout).items()} == want

        reader = source._reader("images")
        keys = [reader.vs.chunk_key(reader.key, reader.enc.name(c)) for c in reader.enc.table[:, 0]]
        listing = source.storage.inner.listing("images/chunks")
        cache = ChunkCache(remote_rows, 64_000_000, str(cache_dir))
        for key in keys:
            assert cache.get(key, listing[key.rsplit("/", 1)[1]][1]) == moto_s3.get(f"{remote_rows}/{key}")

        monkeypatch.setenv("DEEPLAKE_LOADER_CACHE_DIR", str(cache_dir))
        link.log.clear()
        ds = dl.load(remote_rows, read_only=True, creds=moto_s3.creds(link.url), local_cache_size=64)
        with ds.dataloader().batch(7).pytorch(num_threads=1) as loader:
            assert _rows(_epochs(loader)) == list(range(N))
        assert not [p for _, p, _ in link.log if "/images/chunks/" in p and "list-type" not in p]
    assert ds.storage.cache.hits >= len(keys)


def test_chunk_rewritten_in_place_is_not_served_stale(moto_s3, tmp_path, monkeypatch):
    """Appending to a dataset rewrites its tail chunk under the same key: a cached copy of the old
    tail must not be served (entries are keyed by the object's ETag)."""
    import deeplake_loader as dl

    monkeypatch.setenv("DEEPLAKE_LOADER_CACHE_DIR", str(tmp_path / "cache"))
    url = "s3://lake/rewritten"
    moto_s3.upload(write_row_dataset(tmp_path / "ds", 10, max_chunk_size=1_000_000), url)
    ds = dl.load(url, read_only=True, creds=moto_s3.creds(), local_cache_size=16)
    with ds.dataloader().batch(4).pytorch() as loader:
        assert _rows(_epochs(loader)) == list(range(10))
    assert ds.storage.cache.size() > 0
    names_before = set(ds._reader("images").enc.table[:, 0].tolist())

    writable = dl.load(url, creds=moto_s3.creds())
    writable.extend({"images": [row_image(i) for i in range(10, 15)], "labels": [i % 7 for i in range(10, 15)]})

    again = dl.load(url, read_only=True, creds=moto_s3.creds(), local_cache_size=16)
    assert set(again._reader("images").enc.table[:, 0].tolist()) == names_before  # the same (rewritten) chunk
    with again.dataloader().batch(4).pytorch() as loader:
        assert _rows(_epochs(loader)) == list(range(15))


def test_memory_cache_is_bounded_by_bytes(moto_s3, remote_rows):
    import deeplake_loader as dl

    ds = dl.load(remote_rows, read_only=True, creds=moto_s3.creds(), memory_cache_size=0.01)  # 10 kB
    for i in range(0, N, 3):
        np.testing.assert_array_equal(ds.images[i].numpy(), row_image(i))
        assert ds._shared["lru"].nbytes <= 10_000
    with ds.dataloader().batch(16).pytorch() as loader:
        assert _rows(_epochs(loader)) == list(range(N))
    assert ds._shared["lru"].nbytes <= 10_000


def test_enable_local_cache_hook(moto_s3, remote_rows, tmp_path, monkeypatch):
    """The hook behind ds.pytorch(use_local_cache=True): turns the chunk cache on for a remote
    dataset loaded without local_cache_size (so the next epoch reads from disk); nothing to do for
    a local dataset."""
    import deeplake_loader as dl

    monkeypatch.setenv("DEEPLAKE_LOADER_CACHE_DIR", str(tmp_path / "cache"))
    ds = dl.load(remote_rows, read_only=True, creds=moto_s3.creds())
    assert ds.storage.cache is None
    assert ds._enable_local_cache(8) is True and ds.storage.cache.limit == 8_000_000
    with ds.dataloader().batch(16).pytorch() as loader:
        assert _rows(_epochs(loader)) == list(range(N))
    assert 0 < ds.storage.cache.size() <= 8_000_000
    local = dl.load(write_row_dataset(tmp_path / "local", 3), read_only=True)
    assert local._enable_local_cache() is False


def test_epoch_opens_its_tensors_together(moto_s3, remote_rows, monkeypatch):
    """Before an epoch's first batch, the metadata of every selected tensor and the listings of
    their chunk folders are read at once, not one tensor after another: over a link with 50 ms
    per request, the two tensors' reads are in flight at the same time. Rows are unchanged."""
    import threading

    import deeplake_loader as dl
    from deeplake_loader.storage.remote import FsspecProvider

    spans = []
    real = FsspecProvider.get_many

    def recorded(self, keys):
        keys = list(keys)
        t0 = time.monotonic()
        out = real(self, keys)
        spans.append((keys[0].split("/")[0], t0, time.monotonic(), threading.current_thread().name))
        return out

    monkeypatch.setattr(FsspecProvider, "get_many", recorded)
    with SlowLink(moto_s3.endpoint, latency=0.05, seed=1) as link:
        ds = dl.load(remote_rows, read_only=True, creds=moto_s3.creds(link.url))
        with ds.dataloader().batch(16).pytorch(num_threads=1) as loader:
            assert _rows(_epochs(loader)) == list(range(N))
    meta = {name: (a, b) for name, a, b, _ in spans if name in ("images", "labels")}
    assert set(meta) == {"images", "labels"}, spans
    (a1, b1), (a2, b2) = meta["images"], meta["labels"]
    assert a1 < b2 and a2 < b1, spans  # the two round trips overlap
    listed = set(ds.storage.inner._listings) if hasattr(ds.storage, "inner") else set(ds.storage._listings)
    assert {"images/chunks", "labels/chunks"} <= listed


def test_load_reads_its_files_once(moto_s3, remote_rows):
    """load() asks for version_control_info.json and dataset_meta.json together, once each (it made
    a HEAD, then read version_control_info.json twice), and the first epoch does not read
    dataset_meta.json again."""
    import deeplake_loader as dl

    with SlowLink(moto_s3.endpoint, seed=1) as link:
        ds = dl.load(remote_rows, read_only=True, creds=moto_s3.creds(link.url))
        at_load = [(m, p.split("?")[0].rsplit("/", 1)[-1]) for m, p, _ in link.log]
        with ds.dataloader().batch(40).pytorch(num_threads=1) as loader:
            assert _rows(_epochs(loader)) == list(range(N))
        later = [p.split("?")[0].rsplit("/", 1)[-1] for m, p, _ in link.log[len(at_load):]]
    assert sorted(at_load) == [("GET", "dataset_meta.json"), ("GET", "version_control_info.json")], at_load
    assert "dataset_meta.json" not in later, later
