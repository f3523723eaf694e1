"""``ds.pytorch(use_local_cache=True)`` keeps a remote dataset's chunks in the on-disk chunk cache
(storage/cache.py), as deeplake keeps them under ~/.activeloop/cache: the next epoch reads them from
disk. Against a local S3 server (moto)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.common.remote import row_image, write_row_dataset

pytest.importorskip("torch")
N = 40


def test_use_local_cache_reads_the_next_epoch_from_disk(moto_s3, tmp_path, monkeypatch):
    import deeplake_loader as dl

    monkeypatch.setenv("DEEPLAKE_LOADER_CACHE_DIR", str(tmp_path / "cache"))
    url = "s3://lake/use_local_cache"
    moto_s3.upload(write_row_dataset(tmp_path / "rows", N), url)
    # no in-memory chunk cache: every chunk the second epoch needs comes from storage or the disk
    ds = dl.load(url, read_only=True, creds=moto_s3.creds(), memory_cache_size=0)
    assert ds.storage.cache is None
    loader = ds.pytorch(tensors=["images"], batch_size=8, num_workers=0, use_local_cache=True)
    chunks = len(ds._reader("images").enc.table)
    for epoch in range(2):
        rows = []
        for batch in loader:
            for row, img in zip(batch["index"].reshape(-1).tolist(), batch["images"].numpy()):
                np.testing.assert_array_equal(img, row_image(row))
                rows.append(row)
        assert rows == list(range(N))
        cache = ds.storage.cache
        assert cache is not None and cache.size() > 0
        if epoch == 0:
            hits = cache.hits
    assert chunks > 1 and cache.hits - hits >= chunks
    assert dl.load(write_row_dataset(tmp_path / "local", 3), read_only=True).pytorch(use_local_cache=True) is not None
