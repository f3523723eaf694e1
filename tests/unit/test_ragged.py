"""Native loops over ragged (CSR) columns, and the reader's bulk ragged column."""

import numpy as np
import pytest

from deeplake_loader._kernels.ragged import scatter_rows, segment_bool, segment_reduce


def csr(rows):
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    values = np.concatenate([np.asarray(r, dtype=np.float64) for r in rows]) if rows else np.zeros(0)
    return values, offsets


def test_segment_reduce_matches_numpy():
    rng = np.random.default_rng(0)
    rows = [rng.normal(size=int(rng.integers(0, 6))) for _ in range(300)]
    values, offsets = csr(rows)
    for op, fn, empty in [(0, np.sum, 0.0), (1, np.min, np.nan), (2, np.max, np.nan), (3, np.mean, np.nan)]:
        got = segment_reduce(values, offsets, op)
        want = np.array([fn(r) if len(r) else empty for r in rows])
        assert np.allclose(got, want, equal_nan=True), op


def test_segment_bool():
    rows = [[], [0], [1], [1, 0], [1, 1]]
    values, offsets = csr(rows)
    v = values.astype(np.uint8)
    assert segment_bool(v, offsets, 0).tolist() == [False, False, True, True, True]
    assert segment_bool(v, offsets, 1).tolist() == [True, False, True, False, True]
    assert segment_bool(v, offsets, 2).tolist() == [False, False, True, False, True]


def test_scatter_rows_checks_bounds():
    src = np.arange(10, dtype=np.uint8)
    dst = np.zeros(6, np.uint8)
    scatter_rows(src, np.array([8, 0], np.int64), np.array([2, 3], np.int64), dst, np.array([0, 3], np.int64))
    assert dst.tolist() == [8, 9, 0, 0, 1, 2]
    with pytest.raises(ValueError, match="range 1"):
        scatter_rows(src, np.array([0, 9], np.int64), np.array([1, 2], np.int64), dst, np.array([0, 1], np.int64))
    with pytest.raises(ValueError, match="range 0"):
        scatter_rows(src, np.array([0], np.int64), np.array([4], np.int64), dst, np.array([4], np.int64))
    with pytest.raises(ValueError, match="offsets"):
        segment_reduce(np.zeros(2), np.array([0, 5], np.int64), 0)


def test_reader_ragged_column_matches_samples(tmp_path):
    import deeplake_loader as dl

    rng = np.random.default_rng(1)
    boxes = [rng.integers(0, 50, (int(rng.integers(0, 5)), 4)).astype(np.float32) for _ in range(200)]
    ds = dl.empty(str(tmp_path / "d"))
    with ds:
        ds.create_tensor("boxes", htype="bbox", max_chunk_size=500)
        ds.create_tensor("lz", htype="bbox", chunk_compression="lz4")
        ds.extend({"boxes": boxes, "lz": boxes})
    for name in ("boxes", "lz"):
        r = dl.load(str(tmp_path / "d"))._reader(name)
        assert len(r.enc.table) > 1 or name == "lz"
        rows = np.array([199, 3, 3, 0, 150])
        values, offsets = r.ragged_column(rows)
        for k, row in enumerate(rows):
            assert np.array_equal(values[offsets[k]:offsets[k + 1]], boxes[row])
