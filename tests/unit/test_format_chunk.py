"""Chunk files and codecs: serialise → parse round trips, byte ranges, corrupt/truncated chunks,
lz4, canvas crops, versions and JSON metas."""

import json

import numpy as np
import pytest

from deeplake_loader.errors import CorruptDatasetError, DecodeError, UnsupportedError
from deeplake_loader.format import FIRST_COMMIT_ID, compression
from deeplake_loader.format.chunk import Chunk, rle_rows, serialize
from deeplake_loader.format.meta import read_json
from deeplake_loader.format.version import VC_KEY, VersionState
from deeplake_loader.storage import storage_for


def _chunk_of(arrays, chunk_compression=None):
    data = b"".join(a.tobytes() for a in arrays)
    if chunk_compression == "lz4":
        data = compression.lz4_compress(data)
    buf = serialize([a.shape for a in arrays], [a.nbytes for a in arrays], data)
    return Chunk.from_bytes(buf, chunk_compression=chunk_compression, key="t/chunks/1", tensor="t")


@pytest.mark.parametrize("cc", [None, "lz4"])
def test_round_trip_variable_shapes(cc):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 255, (h, 3), dtype=np.uint8) for h in (2, 2, 5, 0, 1, 1, 1)]
    chunk = _chunk_of(arrays, cc)
    assert chunk.num_samples == len(arrays)
    ranges = chunk.byte_ranges(np.arange(len(arrays)))
    for j, a in enumerate(arrays):
        assert chunk.shape(j) == a.shape
        s, e = ranges[j]
        assert bytes(chunk.data[s:e]) == a.tobytes()
        assert bytes(chunk.payload(j)) == a.tobytes()


def test_rle_rows_merge_equal_neighbours():
    rows = rle_rows(np.array([[2, 3], [2, 3], [4, 3], [2, 3]]))
    assert rows.tolist() == [[2, 3, 1], [4, 3, 2], [2, 3, 3]]


def test_payload_zero_copy():
    chunk = _chunk_of([np.arange(10, dtype=np.int32)])
    view = chunk.payload(0)
    assert isinstance(view, memoryview)
    assert np.frombuffer(view, np.int32).tolist() == list(range(10))


def test_truncated_payload_names_sample_and_key():
    arrays = [np.arange(8, dtype=np.uint8)] * 4
    buf = serialize([a.shape for a in arrays], [a.nbytes for a in arrays], b"".join(a.tobytes() for a in arrays))
    chunk = Chunk.from_bytes(buf[:-10], key="t/chunks/9", tensor="t")
    assert bytes(chunk.payload(0)) == arrays[0].tobytes()
    with pytest.raises(CorruptDatasetError) as e:
        chunk.payload(3)
    assert "truncated" in str(e.value) and "t/chunks/9" in str(e.value)
    with pytest.raises(CorruptDatasetError, match="beyond"):
        chunk.byte_ranges([7])


@pytest.mark.parametrize("cut", [0, 1, 5, 12])
def test_truncated_header(cut):
    buf = serialize([(4,)] * 3, [4] * 3, b"\x00" * 12)
    with pytest.raises(CorruptDatasetError, match="header"):
        Chunk.from_bytes(buf[:cut], key="t/chunks/2", tensor="t")


def test_bad_lz4_chunk():
    buf = serialize([(4,)], [4], b"\x40garbage-not-lz4")
    with pytest.raises(CorruptDatasetError, match="lz4"):
        Chunk.from_bytes(buf, chunk_compression="lz4", key="t/chunks/3", tensor="t")


def test_lz4_round_trip_and_errors():
    raw = bytes(range(256)) * 50
    assert compression.lz4_decompress(compression.lz4_compress(raw)) == raw
    assert compression.lz4_decompress(b"") == b""
    with pytest.raises(ValueError):
        compression.lz4_decompress(b"\xff\xff\xff\x7f\x00\x01")


def test_codecs_sniff_decode_and_support():
    img = np.random.default_rng(1).integers(0, 255, (9, 7, 3), dtype=np.uint8)
    png = compression.encode_image(img, "png")
    assert compression.sniff(png) == "png"
    assert np.array_equal(compression.decode_images([png], "png", [img.shape])[0].reshape(img.shape), img)
    assert np.array_equal(compression.pil_decode(png), img)
    with pytest.raises(DecodeError):
        compression.decode_images([b"not an image at all"], "png", [(2, 2, 3)])
    compression.check_supported("mp4", tensor="vid")  # media files: format/media
    with pytest.raises(UnsupportedError, match="mp4"):
        compression.check_supported("mp4", tensor="vid", chunk=True)  # never a chunk compression
    with pytest.raises(UnsupportedError, match="stl"):
        compression.check_supported("stl", tensor="mesh")
    assert compression.normalize("JPG") == "jpeg"


def test_canvas_crop_round_trip():
    rng = np.random.default_rng(2)
    arrays = [rng.integers(0, 255, s, dtype=np.uint8) for s in ((4, 3, 3), (6, 5, 3), (2, 2, 3))]
    canvas = compression.build_canvas(arrays)
    shapes = np.array([a.shape for a in arrays])
    for j, a in enumerate(arrays):
        assert np.array_equal(compression.canvas_crop(canvas, shapes[:j + 1], j), a)


def test_read_json_errors():
    st = storage_for("mem://h1-format-json")
    st.put("a.json", b"{not json")
    st.put("b.json", b"[1, 2]")
    with pytest.raises(CorruptDatasetError, match="a.json"):
        read_json(st, "a.json", tensor="t")
    with pytest.raises(CorruptDatasetError, match="b.json"):
        read_json(st, "b.json")
    assert read_json(st, "missing.json", default={}) == {}


def _vc(commits, branches):
    return json.dumps({"commits": commits, "branches": branches}).encode()


def test_version_state_chain_and_chunk_set_walk():
    st = storage_for("mem://h1-format-vc")
    node = lambda parent, branch="main": {"branch": branch, "parent": parent, "children": []}  # noqa: E731
    st.put(VC_KEY, _vc({FIRST_COMMIT_ID: node(None), "c1": node(FIRST_COMMIT_ID), "c2": node("c1"),
                        "d1": node("c1", "dev")}, {"main": "c2", "dev": "d1"}))
    vs = VersionState(st)
    assert vs.head == "c2" and vs.chain == ["c2", "c1", FIRST_COMMIT_ID] and vs.is_head_of_branch
    assert vs.key("dataset_meta.json") == "versions/c2/dataset_meta.json"
    st.put("versions/c1/x/chunk_set", b"aa,cc:d1:y")
    assert vs.chunk_key("x", "aa") == "versions/c1/x/chunks/aa"
    assert vs.chunk_key("x", "cc") == "versions/d1/y/chunks/cc"  # a merged entry name:commit:key
    assert vs.chunk_key("x", "bb") == "x/chunks/bb"  # not in any chunk_set: the first commit's
    dev = VersionState(st, branch="dev")
    assert dev.chain == ["d1", "c1", FIRST_COMMIT_ID]
    old = VersionState(st, commit="c1")
    assert old.head == "c1" and not old.is_head_of_branch
    with pytest.raises(Exception, match="nope"):
        VersionState(st, branch="nope")


def test_version_state_cycle_and_missing_parent():
    st = storage_for("mem://h1-format-vc-bad")
    st.put(VC_KEY, _vc({"a": {"parent": "b"}, "b": {"parent": "a"}}, {"main": "a"}))
    with pytest.raises(CorruptDatasetError, match="cycle"):
        VersionState(st)
    st.put(VC_KEY, _vc({"a": {"parent": "zz"}}, {"main": "a"}))
    with pytest.raises(CorruptDatasetError, match="zz"):
        VersionState(st)
    st.put(VC_KEY, b"[]")
    with pytest.raises(CorruptDatasetError):
        VersionState(st)
