"""Run-length encoders of the format: chunk ids, tiles, sequences (round trips, lookups, corrupt bytes)."""

import struct

import numpy as np
import pytest

from deeplake_loader.errors import CorruptDatasetError
from deeplake_loader.format.encoders import (ChunkIdEncoder, SequenceEncoder, TileEncoder, locate,
                                             split_version, version_header)


def _enc(rows):
    return ChunkIdEncoder(np.array(rows, np.uint64).reshape(-1, 2))


def test_chunk_id_round_trip_and_locate():
    enc = _enc([[0xAB, 9], [0xCD, 19], [0xEF, 24]])
    back = ChunkIdEncoder.parse(enc.tobytes(), tensor="x", key="k")
    assert np.array_equal(back.table, enc.table)
    assert back.num_samples == 25
    rows, local = back.locate([0, 9, 10, 19, 20, 24])
    assert rows.tolist() == [0, 0, 1, 1, 2, 2]
    assert local.tolist() == [0, 9, 0, 9, 0, 4]
    assert ChunkIdEncoder.name(0xAB) == "ab"


def test_chunk_id_tiled_sample_spans_rows():
    # sample 3 is tiled over three chunks: three rows with the same last index
    enc = _enc([[1, 2], [2, 3], [3, 3], [4, 3], [5, 7]])
    assert list(enc.rows_of(3)) == [1, 2, 3]
    assert list(enc.rows_of(7)) == [4]
    rows, local = enc.locate([3, 4])
    assert rows.tolist() == [1, 4] and local.tolist() == [0, 0]


def test_chunk_id_legacy_width4_without_width_byte():
    body = np.array([[7, 4], [8, 9]], "<u4").tobytes()
    enc = ChunkIdEncoder.parse(version_header("2.0.0") + body)
    assert enc.table.tolist() == [[7, 4], [8, 9]]


def test_chunk_id_empty():
    assert ChunkIdEncoder.parse(None).num_samples == 0
    assert ChunkIdEncoder.parse(b"").num_samples == 0


@pytest.mark.parametrize("buf, words", [
    (version_header() + b"\x08" + b"\x00" * 12, "whole rows"),
    (version_header() + b"\x03" + b"\x00" * 12, "width 3"),
    (version_header(), "width byte"),
    (b"\x09abc", "truncated version"),
    (version_header() + b"\x08" + np.array([[1, 9], [2, 3]], "<u8").tobytes(), "not sorted"),
])
def test_chunk_id_corrupt(buf, words):
    with pytest.raises(CorruptDatasetError) as e:
        ChunkIdEncoder.parse(buf, tensor="lab", key="lab/chunks_index/unsharded")
    msg = str(e.value)
    assert words in msg and "lab/chunks_index/unsharded" in msg and "lab" in msg


def test_locate_first_items():
    rows, first = locate(np.array([4, 9, 14]), [0, 5, 14])
    assert rows.tolist() == [0, 1, 2] and first.tolist() == [0, 5, 10]


def test_split_version():
    v, o = split_version(version_header("3.9.52") + b"rest")
    assert v == "3.9.52" and o == 7


def test_tile_encoder_round_trip_and_legacy():
    entries = {3: ((1000, 800, 3), (500, 400, 3)), 7: ((10, 10, 3), (5, 10, 3))}
    assert TileEncoder.parse(TileEncoder(entries).tobytes()).entries == entries
    assert TileEncoder.parse(TileEncoder({}).tobytes()).entries == {}
    legacy = struct.pack(">QQ", 1, 2) + np.array([5, 100, 80, 50, 40], ">u8").tobytes()
    assert TileEncoder.parse(legacy).entries == {5: ((100, 80), (50, 40))}


def test_tile_encoder_corrupt():
    with pytest.raises(CorruptDatasetError, match="tile"):
        TileEncoder.parse(version_header() + struct.pack("<QQ", 5, 2) + b"\x00" * 8, tensor="im", key="k")


def test_sequence_encoder():
    # sequences of 3 items (seq 0..1, items 0..5) then of 2 items (seq 2, items 6..7)
    table = np.array([[3, 0, 1], [2, 6, 2]], "<u4")
    seq = SequenceEncoder.parse(version_header() + table.tobytes())
    assert len(seq) == 3
    assert list(seq.items(0)) == [0, 1, 2]
    assert list(seq.items(1)) == [3, 4, 5]
    assert list(seq.items(2)) == [6, 7]
    with pytest.raises(CorruptDatasetError, match="whole rows"):
        SequenceEncoder.parse(version_header() + b"\x00" * 5)
