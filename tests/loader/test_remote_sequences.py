"""The loader's property tests over remote storage: an s3 dataset on a moto server on loopback, read
with no memory cache (every epoch reads its chunks over the network again), with and without the
on-disk chunk cache.

* test_epochs.py's random sequences (fixed seeds in the test ids) of epochs, early breaks, abandoned
  iterators and closes, with 0 or 2 workers: every sample of every batch is the one its ``index``
  names (pixels and ``vec`` encode the row), a finished epoch holds every row once, and no loader
  thread (the fetch window's readers and sizer included) or worker outlives the loader;
* test_resume.py's resumes: a state saved mid-epoch (or at an epoch's end) over the s3 dataset and
  loaded in a new process, which reopens the dataset from its URL, yields exactly what the
  uninterrupted run yields (rows, order, batch boundaries, pixel checksums).

Nothing here is a second generator: the sequences, checks and chains are those of test_epochs.py,
test_resume.py and tests/common/resume.py."""

from __future__ import annotations

import numpy as np
import psutil
import pytest

import deeplake_loader as dl
from tests.common import resume

from .test_epochs import loader_threads, run_sequence
from .test_resume import run_child, state_after

pytest.importorskip("moto.server", reason="moto[server] provides the local S3 endpoint")
pytest.importorskip("s3fs", reason="s3fs serves s3:// paths")


@pytest.fixture(scope="module")
def rows_url(moto_s3, loader_ds):
    """loader_ds (tests/loader/conftest.py: 50 rows whose pixels and vec encode the row) on s3."""
    url = "s3://lake/sequence_rows"
    moto_s3.upload(loader_ds.path, url)
    return url


@pytest.fixture(scope="module")
def resume_url(moto_s3, tmp_path_factory):
    """tests/common/resume.py's dataset (300 rows, ~60 chunks) on s3."""
    path = str(tmp_path_factory.mktemp("remote_resume") / "ds")
    resume.build(path)
    url = "s3://lake/resume_rows"
    moto_s3.upload(path, url)
    return url


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPLAKE_LOADER_CACHE_DIR", str(tmp_path / "cache"))


CASES = ([(0, False, seed) for seed in (401, 402, 403, 404)] + [(2, True, 501), (2, False, 601)])


@pytest.mark.parametrize("cache_mb", [0, 16], ids=["network", "disk_cache"])
@pytest.mark.parametrize("workers,persistent,seed", CASES, ids=[f"w{w}-{'p' if p else 'np'}-seed{s}" for w, p, s in CASES])
def test_every_batch_over_s3_holds_the_rows_its_index_names(moto_s3, rows_url, cache_dir, workers, persistent, seed,
                                                            cache_mb):
    ds = dl.load(rows_url, read_only=True, creds=moto_s3.creds(), memory_cache_size=0, local_cache_size=cache_mb)
    threads = loader_threads()
    pids = run_sequence(ds, workers, persistent, seed)
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert loader_threads() <= threads
    if cache_mb:
        assert ds.storage.cache.hits > 0 and 0 < ds.storage.cache.size() <= 16_000_000


def _checked(batch):
    """resume.record of a batch whose ``row`` tensor (the row id stored with each row) is its index."""
    assert np.asarray(batch["row"]).reshape(-1).tolist() == np.asarray(batch["index"]).reshape(-1).tolist()
    return resume.record(batch)


@pytest.mark.parametrize("name", ["shuffle", "shuffle_workers", "sample_by", "query_offset"])
def test_a_resume_over_s3_in_a_new_process_equals_the_uninterrupted_run(moto_s3, resume_url, tmp_path, monkeypatch,
                                                                       name):
    for var, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_ENDPOINT_URL", moto_s3.endpoint), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(var, value)  # the child opens the URL with the environment's credentials
    ds = dl.load(resume_url, read_only=True, memory_cache_size=0)
    ref = resume.chain(ds, name)
    e1, e2, e3 = [[_checked(b) for b in ref] for _ in range(3)]
    ref.close()
    n = len(e1)
    assert n == len(ref) and e1 != e2
    cases = {"first": (0, 1, e1[1:] + e2), "mid": (0, n // 2, e1[n // 2:] + e2), "last": (0, n, e2 + e3),
             "epoch2": (1, n // 3, e2[n // 3:] + e3)}
    jobs = {case: {"chain": name, "state": state_after(ds, name, before, k), "epochs": 2}
            for case, (before, k, _) in cases.items()}
    got = run_child(tmp_path, resume_url, jobs)
    for case, (_, _, want) in cases.items():
        flat = [b for epoch in got[case] for b in epoch]
        assert [b[0] for b in flat] == [b[0] for b in want], f"{name}/{case}: rows or batch boundaries differ"
        assert flat == want, f"{name}/{case}: same rows, different pixels or transformed values"
