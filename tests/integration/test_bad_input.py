"""Bad input: every corruption raises a clear deeplake_loader error naming what was wrong and where
(tensor, sample index, key/file); never a crash, a hang or silently wrong data. A failed append
leaves the dataset readable at its previous length, with no partial writes.

Corruptions are applied to COPIES of the vectors written by real deeplake 3.9.52.
"""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest

from deeplake_loader.errors import CorruptDatasetError, DatasetNotFoundError, DecodeError
from tests.common import dl3

ACCESS = ["item", "bulk"]

_MISSING = dl3.missing_api("load")
pytestmark = pytest.mark.skipif(bool(_MISSING), reason=f"deeplake_loader does not export {_MISSING} yet")
needs_writer = pytest.mark.skipif(bool(dl3.missing_api("empty")), reason="deeplake_loader has no writer (empty) yet")


def _load(path):
    import deeplake_loader

    return deeplake_loader.load(str(path), read_only=True)


def _read(t, i, access):
    if access == "item":
        return t[i].numpy()
    return t.numpy(aslist=True)[i]


def _expected(dl3_vectors, vector, tensor):
    view = dl3.load_expected(dl3_vectors / vector)["views"][0]
    arrays = dl3.load_npz(dl3_vectors / vector / view["npz"])
    j = view["meta"][tensor]["index"]
    return [arrays[f"t{j}/{i}"] for i in range(view["meta"][tensor]["length"])]


def _only_chunk(path, tensor):
    chunks = sorted((path / tensor / "chunks").iterdir())
    assert len(chunks) == 1, chunks
    return chunks[0]


def _chunk_layout(buf: bytes):
    """(data_offset, byte_positions uint32[n,3]) of a chunk file (spec §4), parsed independently."""
    v = buf[0]
    o = 1 + v
    rows, cols = struct.unpack_from("<ii", buf, o)
    o += 8 + 4 * rows * cols
    (n,) = struct.unpack_from("<I", buf, o)
    o += 4
    bpos = np.frombuffer(buf, "<u4", count=3 * n, offset=o).reshape(n, 3)
    return o + 12 * n, bpos


def _sample_range(bpos, i):
    r = int(np.searchsorted(bpos[:, 2], i))
    first = 0 if r == 0 else int(bpos[r - 1, 2]) + 1
    start = int(bpos[r, 1]) + (i - first) * int(bpos[r, 0])
    return start, start + int(bpos[r, 0])


def _assert_names(err, tensor=None, index=None, key=None):
    msg = str(err)
    if tensor is not None:
        assert tensor in msg, f"message does not name tensor {tensor!r}: {msg}"
        assert getattr(err, "tensor", tensor) == tensor, msg
    if index is not None:
        assert f"sample index {index}" in msg, f"message does not name sample index {index}: {msg}"
        assert getattr(err, "index", index) == index, msg
    if key is not None:
        assert key in msg, f"message does not name key/file {key!r}: {msg}"


# --------------------------------------------------------------------------------------------------
# not a dataset (no deeplake needed)


@pytest.mark.parametrize("kind", ["missing", "empty_dir", "other_files"])
def test_path_that_is_not_a_dataset(tmp_path, kind):
    p = tmp_path / "nothing"
    if kind != "missing":
        p.mkdir()
    if kind == "other_files":
        (p / "readme.txt").write_text("not a dataset")
        (p / "x").mkdir()
        (p / "x" / "tensor_meta.json").write_text("{}")
    with pytest.raises(DatasetNotFoundError) as e:
        _load(p)
    assert str(p) in str(e.value)


# --------------------------------------------------------------------------------------------------
# corrupt metadata


@pytest.mark.dl3
@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2, 3]", b'{"tensors": 5}'])
def test_corrupt_dataset_meta(vector_copy, content):
    p = vector_copy("generic_fixed")
    (p / "dataset_meta.json").write_bytes(content)
    with pytest.raises(CorruptDatasetError) as e:
        ds = _load(p)
        for name in ds.tensors:
            ds[name].numpy()
    _assert_names(e.value, key="dataset_meta.json")


@pytest.mark.dl3
@pytest.mark.parametrize("content", [b'{"htype": "generic", "dtype": ', b"\xff\xfe garbage", b"[]",
                                     b'{"htype": "generic"}', b'{"htype": "generic", "dtype": "int32", "length": "x"}'])
def test_corrupt_tensor_meta(vector_copy, content):
    p = vector_copy("generic_fixed")
    (p / "f_int32" / "tensor_meta.json").write_bytes(content)
    with pytest.raises(CorruptDatasetError) as e:
        ds = _load(p)
        ds["f_int32"].numpy()
    _assert_names(e.value, tensor="f_int32", key="f_int32/tensor_meta.json")


# --------------------------------------------------------------------------------------------------
# chunk index / chunk files


@pytest.mark.dl3
@pytest.mark.parametrize("access", ACCESS)
def test_chunk_index_pointing_past_the_end_of_a_chunk(vector_copy, dl3_vectors, access):
    """Row 0 of the chunk id encoder claims 3 more samples than chunk 0 holds."""
    p = vector_copy("multi_chunk")
    enc_path = p / "fx" / "chunks_index" / "unsharded"
    buf = bytearray(enc_path.read_bytes())
    v = buf[0]
    width = buf[1 + v]
    assert width == 8
    rows = np.frombuffer(bytes(buf[2 + v:]), "<u8").reshape(-1, 2).copy()
    assert len(rows) > 2
    last0 = int(rows[0, 1])
    rows[0, 1] = last0 + 3
    enc_path.write_bytes(bytes(buf[: 2 + v]) + rows.astype("<u8").tobytes())
    chunk_name = format(int(rows[0, 0]), "x")
    want = _expected(dl3_vectors, "multi_chunk", "fx")
    ds = _load(p)
    t = ds["fx"]
    assert dl3.array_mismatch(t[last0].numpy(), want[last0]) is None  # before the damage: intact
    bad = last0 + 1
    with pytest.raises(CorruptDatasetError) as e:
        _read(t, bad, access)
    _assert_names(e.value, tensor="fx", index=bad, key=chunk_name)


@pytest.mark.dl3
@pytest.mark.parametrize("access", ACCESS)
def test_chunk_index_beyond_tensor_length(vector_copy, access):
    """The encoder's last row ends past tensor_meta.length: inconsistent, must not be read silently."""
    p = vector_copy("generic_fixed")
    enc_path = p / "f_int32" / "chunks_index" / "unsharded"
    buf = bytearray(enc_path.read_bytes())
    v = buf[0]
    rows = np.frombuffer(bytes(buf[2 + v:]), "<u8").reshape(-1, 2).copy()
    rows[-1, 1] += 5
    enc_path.write_bytes(bytes(buf[: 2 + v]) + rows.astype("<u8").tobytes())
    with pytest.raises(CorruptDatasetError) as e:
        ds = _load(p)
        _read(ds["f_int32"], 0, access)
    _assert_names(e.value, tensor="f_int32", key="f_int32/chunks_index/unsharded")


@pytest.mark.dl3
@pytest.mark.parametrize("access", ACCESS)
def test_truncated_chunk_data(vector_copy, dl3_vectors, access):
    """Chunk cut in the middle of sample 5: samples 0-4 read exactly, sample 5 raises."""
    p = vector_copy("generic_fixed")
    chunk = _only_chunk(p, "f_int32")
    buf = chunk.read_bytes()
    data_offset, bpos = _chunk_layout(buf)
    start5, end5 = _sample_range(bpos, 5) if len(bpos) else (5 * 48, 6 * 48)
    chunk.write_bytes(buf[: data_offset + start5 + (end5 - start5) // 2])
    want = _expected(dl3_vectors, "generic_fixed", "f_int32")
    t = _load(p)["f_int32"]
    if access == "item":
        for i in range(5):
            assert dl3.array_mismatch(t[i].numpy(), want[i]) is None, i
    with pytest.raises(CorruptDatasetError) as e:
        _read(t, 5, access)
    _assert_names(e.value, tensor="f_int32", index=5, key=chunk.name)


@pytest.mark.dl3
@pytest.mark.parametrize("access", ACCESS)
def test_truncated_chunk_header(vector_copy, access):
    p = vector_copy("generic_ragged")
    chunk = _only_chunk(p, "r2")
    chunk.write_bytes(chunk.read_bytes()[:15])
    t = _load(p)["r2"]
    with pytest.raises(CorruptDatasetError) as e:
        _read(t, 3, access)
    _assert_names(e.value, tensor="r2", key=chunk.name)


@pytest.mark.dl3
@pytest.mark.parametrize("access", ACCESS)
def test_missing_chunk_file(vector_copy, access):
    p = vector_copy("multi_chunk")
    enc = (p / "fx" / "chunks_index" / "unsharded").read_bytes()
    v = enc[0]
    rows = np.frombuffer(enc[2 + v:], "<u8").reshape(-1, 2)
    name = format(int(rows[1, 0]), "x")
    (p / "fx" / "chunks" / name).unlink()
    t = _load(p)["fx"]
    t[0].numpy()  # chunk 0 is still there
    bad = int(rows[0, 1]) + 1  # first sample of the deleted chunk
    with pytest.raises(CorruptDatasetError) as e:
        _read(t, bad, access)
    _assert_names(e.value, tensor="fx", index=bad, key=name)


@pytest.mark.dl3
@pytest.mark.parametrize("access", ACCESS)
@pytest.mark.parametrize("vector", ["image_jpeg", "image_png"])
def test_sample_bytes_not_an_image(vector_copy, dl3_vectors, vector, access):
    """Sample 1's payload overwritten with non-image bytes of the same length → DecodeError for
    sample 1 only; its neighbours still decode exactly."""
    p = vector_copy(vector)
    chunk = _only_chunk(p, "img")
    buf = bytearray(chunk.read_bytes())
    data_offset, bpos = _chunk_layout(bytes(buf))
    s, e_ = _sample_range(bpos, 1)
    assert e_ > s
    buf[data_offset + s: data_offset + e_] = bytes((k * 7 + 3) % 251 for k in range(e_ - s))
    chunk.write_bytes(bytes(buf))
    want = _expected(dl3_vectors, vector, "img")
    t = _load(p)["img"]
    if access == "item":
        assert dl3.array_mismatch(t[0].numpy(), want[0]) is None
        assert dl3.array_mismatch(t[2].numpy(), want[2]) is None
    with pytest.raises(DecodeError) as e:
        _read(t, 1, access)
    _assert_names(e.value, tensor="img", index=1, key=chunk.name)


@pytest.mark.dl3
@pytest.mark.parametrize("access", ACCESS)
def test_chunk_canvas_not_an_image(vector_copy, access):
    """Chunk-wise jpeg: the canvas of the first chunk is garbage → DecodeError for its samples."""
    p = vector_copy("jpeg_chunk")
    chunk = _only_chunk(p, "img")
    buf = chunk.read_bytes()
    data_offset, _ = _chunk_layout(buf)
    chunk.write_bytes(buf[:data_offset] + bytes((k * 13 + 5) % 256 for k in range(len(buf) - data_offset)))
    t = _load(p)["img"]
    with pytest.raises(DecodeError) as e:
        _read(t, 0, access)
    _assert_names(e.value, tensor="img", index=0, key=chunk.name)


@pytest.mark.dl3
@pytest.mark.parametrize("tensor, sample", [("sample_fixed", 3), ("sample_text", 6), ("sample_json", 2)])
def test_lz4_or_json_payload_corrupt(vector_copy, dl3_vectors, tensor, sample):
    """A sample-lz4 payload replaced by bytes that are not lz4 (or JSON that is not JSON after
    decompression): a clear error for that sample; the neighbours are intact."""
    p = vector_copy("lz4")
    chunk = _only_chunk(p, tensor)
    buf = bytearray(chunk.read_bytes())
    data_offset, bpos = _chunk_layout(bytes(buf))
    s, e_ = _sample_range(bpos, sample)
    assert e_ - s >= 5
    if tensor == "sample_json":  # a valid lz4 block of exactly the same size, holding broken JSON
        import lz4.block

        noise = np.random.default_rng(5).integers(0, 256, e_ - s, dtype=np.uint8).tobytes()
        fits = [lz4.block.compress(b'{"broken' + noise[:k]) for k in range(e_ - s)]
        bad = next(c for c in fits if len(c) == e_ - s)
    else:  # claims a huge decompressed size, then garbage
        bad = struct.pack("<I", 0x7FFFFFF0) + bytes([0xFF] * (e_ - s - 4))
    buf[data_offset + s: data_offset + e_] = bad
    chunk.write_bytes(bytes(buf))
    t = _load(p)[tensor]
    t[sample - 1].numpy()
    t[sample + 1].numpy()
    with pytest.raises((CorruptDatasetError, DecodeError)) as e:
        t[sample].data() if tensor != "sample_fixed" else t[sample].numpy()
    _assert_names(e.value, tensor=tensor, index=sample, key=chunk.name)


# --------------------------------------------------------------------------------------------------
# failed appends leave no trace


def _snapshot(root):
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*")) if f.is_file() and not f.name.endswith(".lock")}


BAD_SAMPLES = {
    "wrong_type": "not a number",
    "wrong_ndim": np.zeros((2, 2, 2), np.int32),
    "wrong_dtype": np.array([1.5, 2.5]),
}


def _assert_rejected(err, tensor):
    """A failed append must be a validation error naming the tensor, not a missing feature."""
    from deeplake_loader.errors import DeepLakeLoaderError, ReadOnlyError, UnsupportedError

    assert isinstance(err, (ValueError, TypeError, DeepLakeLoaderError)), f"{type(err).__name__}: {err}"
    assert not isinstance(err, (UnsupportedError, ReadOnlyError)), f"{type(err).__name__}: {err}"
    assert tensor in str(err), f"the error does not name tensor {tensor!r}: {err}"


def _new_dataset(path):
    import deeplake_loader as dl

    ds = dl.empty(str(path), overwrite=True)
    with ds:
        ds.create_tensor("x", dtype="int32")
        ds.create_tensor("name", htype="text")
        ds.x.extend([np.array([i, -i], np.int32) for i in range(6)])
        ds.name.extend([f"row {i}" for i in range(6)])
    return ds


def _check_intact(path, before, n):
    import deeplake_loader as dl

    assert _snapshot(path) == before, "a failed append changed files on disk"
    ds = dl.load(str(path), read_only=True)
    assert len(ds) == n and len(ds.x) == n and len(ds.name) == n
    for i in range(n):
        assert ds.x[i].numpy().tolist() == [i, -i]
        assert ds.name[i].data()["value"] == f"row {i}"


@needs_writer
@pytest.mark.parametrize("bad", list(BAD_SAMPLES))
def test_failed_tensor_extend_leaves_dataset_unchanged(tmp_path, bad):
    p = tmp_path / "ds"
    ds = _new_dataset(p)
    ds.flush()
    before = _snapshot(p)
    samples = [np.array([6, -6], np.int32), np.array([7, -7], np.int32), BAD_SAMPLES[bad], np.array([9, -9], np.int32)]
    with pytest.raises(Exception) as e:
        ds.x.extend(samples)
        ds.flush()
    _assert_rejected(e.value, "x")
    assert len(ds.x) == 6, "the in-memory tensor grew after a failed extend"
    _check_intact(p, before, 6)


@needs_writer
@pytest.mark.parametrize("bad", list(BAD_SAMPLES))
def test_failed_dataset_extend_leaves_every_tensor_unchanged(tmp_path, bad):
    """ds.extend({...}) where one column holds a bad sample: no column is written."""
    p = tmp_path / "ds"
    ds = _new_dataset(p)
    ds.flush()
    before = _snapshot(p)
    with pytest.raises(Exception) as e:
        ds.extend({"name": ["row 6", "row 7", "row 8"],
                   "x": [np.array([6, -6], np.int32), BAD_SAMPLES[bad], np.array([8, -8], np.int32)]})
        ds.flush()
    _assert_rejected(e.value, "x")
    assert len(ds.name) == 6 and len(ds.x) == 6, "a column grew after a failed ds.extend"
    _check_intact(p, before, 6)
    # the dataset stays usable: a good append afterwards works and reads back
    ds.extend({"name": ["row 6"], "x": [np.array([6, -6], np.int32)]})
    ds.flush()
    import deeplake_loader as dl

    again = dl.load(str(p), read_only=True)
    assert len(again) == 7 and again.x[6].numpy().tolist() == [6, -6] and again.name[6].data()["value"] == "row 6"


@needs_writer
@pytest.mark.dl3
def test_failed_append_to_deeplake_dataset_leaves_no_partial_write(vector_copy, dl3_vectors):
    """Same on a dataset written by deeplake 3.9.52, which deeplake then still reads as before."""
    import deeplake_loader as dl

    p = vector_copy("generic_fixed")
    before = _snapshot(p)
    ds = dl.load(str(p), read_only=False)
    with pytest.raises(Exception) as e:
        ds.f_int32.extend([np.zeros((3, 4), np.int32), "bad", np.zeros((3, 4), np.int32)])
        ds.flush()
    _assert_rejected(e.value, "f_int32")
    assert _snapshot(p) == before
    view = dl3.load_expected(dl3_vectors / "generic_fixed")["views"][0]
    arrays = dl3.load_npz(dl3_vectors / "generic_fixed" / view["npz"])
    out = dl3.run_dl3(
        """
        import sys
        from pathlib import Path
        sys.path.insert(0, ARGS[1])
        from dl3_vectors import dump_view
        emit(dump_view(Path(ARGS[0]), "after_failed_append", {}))
        """,
        p.parent, str(dl3.VECTORS_SCRIPT.parent),
    )
    assert out["len"] == view["len"]
    bad = dl3.compare_dataset(dl.load(str(p), read_only=True), view, arrays, where="ours: ")
    assert not bad, "\n".join(bad[:20])
    assert json.dumps(out["meta"], sort_keys=True) == json.dumps(view["meta"], sort_keys=True)
