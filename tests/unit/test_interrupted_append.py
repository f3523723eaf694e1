"""An append cut short at any write (a killed process) never gives wrong data: each tensor either
reads its committed rows exactly or refuses with CorruptDatasetError, and the next append (even of
no rows, as `deeplake-loader ingest` does when it resumes) continues at the committed length.

tensor_meta.json is written last by a flush, so its length is the commit point of each tensor;
chunks, the chunk index and the tile index written before it may run ahead of it.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import deeplake_loader as dl
from deeplake_loader.errors import CorruptDatasetError
from deeplake_loader.sample import Sample
from deeplake_loader.storage.local import LocalProvider


class Killed(BaseException):
    """The process died here (nothing after it runs, nothing catches it)."""


def value(row):
    return 10 + 7 * row


def jpeg(row):
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value(row), np.uint8)).save(buf, "JPEG", quality=95)
    return Sample(buffer=buf.getvalue(), compression="jpeg")


TENSORS = ("images", "labels", "tiled")


def rows(a, b):
    return {"images": [jpeg(r) for r in range(a, b)], "labels": list(range(a, b)),
            "tiled": [np.full((40, 30), r, np.uint8) for r in range(a, b)]}


def check_one(ds, name, n):
    assert len(ds[name]) == n
    if name == "labels":
        assert ds.labels.numpy().reshape(-1).tolist() == list(range(n))
    elif name == "images":
        for r, img in enumerate(ds.images.numpy(aslist=True)):
            assert img.shape == (8, 8, 3) and np.abs(img.astype(int) - value(r)).max() <= 2, r
    else:
        for r in range(n):
            assert (ds.tiled[r].numpy() == np.full((40, 30), r, np.uint8)).all(), r


def check(ds, lengths):
    for name, n in zip(TENSORS, lengths):
        check_one(ds, name, n)


def make(path):
    ds = dl.empty(str(path))
    # ~5 images per chunk: an append both reopens the tail chunk and starts new ones
    ds.create_tensor("images", htype="image", sample_compression="jpeg", max_chunk_size=2 * 5 * 700)
    ds.create_tensor("labels", htype="class_label")
    ds.create_tensor("tiled", dtype="uint8", max_chunk_size=2000, tiling_threshold=1000)  # one sample in tiles
    ds.extend(rows(0, 7))
    assert ds.tiled.reader.tiles
    return ds


@pytest.fixture
def puts(monkeypatch):
    """Counts LocalProvider.put calls; raises Killed at call number ``state['cut']``."""
    real = LocalProvider.put
    state = {"n": 0, "cut": None}

    def put(self, key, data):
        if state["cut"] is not None and state["n"] == state["cut"]:
            raise Killed(key)
        state["n"] += 1
        return real(self, key, data)

    monkeypatch.setattr(LocalProvider, "put", put)
    return state


def test_every_cut_point_of_an_append(tmp_path, puts):
    make(tmp_path / "count")
    puts["n"] = 0
    dl.load(str(tmp_path / "count")).extend(rows(7, 12))
    writes = puts["n"]
    assert writes >= 12  # chunks, tiles, chunk and tile indexes, infos, metas, commit diffs of 3 tensors

    refused = 0
    for cut in range(writes):
        path = tmp_path / f"cut{cut}"
        make(path)
        puts.update(n=0, cut=cut)
        with pytest.raises(Killed):
            dl.load(str(path)).extend(rows(7, 12))
        puts["cut"] = None

        ds = dl.load(str(path), read_only=True)
        for name in TENSORS:  # as it was left: the committed rows, or a refusal
            try:
                n = len(ds[name])
                assert n in (7, 12), (cut, name, n)
                check_one(ds, name, n)
            except CorruptDatasetError as e:
                assert "chunk index covers 12 samples but tensor_meta says 7" in str(e), (cut, e)
                refused += 1
        ds = dl.load(str(path))
        for name in TENSORS:
            ds[name].extend([])  # an append of nothing drops what the cut left behind
        lengths = [len(ds[name]) for name in TENSORS]
        assert set(lengths) <= {7, 12}, (cut, lengths)
        check(ds, lengths)
        # resume as ingest does: each tensor catches up from its own length, then all go on
        for name, n in zip(TENSORS, lengths):
            if n < 12:
                ds[name].extend(rows(n, 12)[name])
        ds.extend(rows(12, 16))
        ds = dl.load(str(path), read_only=True)
        check(ds, [16, 16, 16])
        for name in TENSORS:
            assert ds[name].reader.enc.num_samples == 16, (cut, name)
    assert refused, "no cut left an index ahead of its tensor_meta: the repair path was not exercised"
