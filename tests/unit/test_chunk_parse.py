"""The nogil chunk-header parser on real layouts and on untrusted, corrupt bytes."""

import struct

import numpy as np
import pytest

from deeplake_loader._kernels.chunk import parse_header


def make_chunk(shapes, bpos, data, version=b"3.9.52", shape_cols=None):
    shapes = np.asarray(shapes, dtype="<u4").reshape(len(shapes), -1) if len(shapes) else np.zeros((0, 0), "<u4")
    cols = shapes.shape[1] if shape_cols is None else shape_cols
    out = bytes([len(version)]) + version + struct.pack("<ii", shapes.shape[0], cols) + shapes.tobytes()
    bpos = np.asarray(bpos, dtype="<u4").reshape(-1, 3)
    return out + struct.pack("<I", bpos.shape[0]) + bpos.tobytes() + data


def test_worked_example_of_the_spec():
    # spec 4.4: generic int32, 3 samples of shape (2, 3)
    data = np.arange(18, dtype="<i4").tobytes()
    chunk = make_chunk([[2, 3, 2]], [[24, 0, 2]], data)
    version, shapes, bpos, off = parse_header(chunk)
    assert version == "3.9.52"
    assert shapes.tolist() == [[2, 3, 2]]
    assert bpos.tolist() == [[24, 0, 2]]
    assert chunk[off:] == data


def test_empty_shape_table_ignores_column_count():
    for cols in (0, 4):
        chunk = make_chunk([], [], b"xyz", shape_cols=cols)
        _, shapes, bpos, off = parse_header(chunk)
        assert shapes.shape == (0, 0) and bpos.shape == (0, 3)
        assert chunk[off:] == b"xyz"


def test_every_truncation_is_an_error_not_a_crash():
    chunk = make_chunk([[4, 5, 3, 0], [5, 5, 3, 1]], [[10, 0, 0], [12, 10, 1]], b"")
    for cut in range(len(chunk)):
        with pytest.raises(ValueError, match="truncated"):
            parse_header(chunk[:cut])
    parse_header(chunk)


def test_lying_row_counts():
    chunk = bytearray(make_chunk([[1, 0]], [[1, 0, 0]], b"x"))
    chunk[7:11] = struct.pack("<i", -5)  # S_rows
    with pytest.raises(ValueError, match="negative or impossible"):
        parse_header(bytes(chunk))
    chunk = bytearray(make_chunk([[1, 0]], [[1, 0, 0]], b"x"))
    chunk[7:11] = struct.pack("<i", 2**30)
    with pytest.raises(ValueError, match="truncated"):
        parse_header(bytes(chunk))


def test_random_bytes_never_crash(rng):
    for _ in range(2000):
        blob = rng.integers(0, 256, size=int(rng.integers(0, 64)), dtype=np.uint8).tobytes()
        try:
            parse_header(blob)
        except ValueError:
            pass


def test_slice_bytes_copies_each_range():
    from deeplake_loader._kernels.chunk import slice_bytes

    data = bytes(range(256)) * 40
    ranges = np.array([[0, 10], [10, 10], [5000, 10240], [3, 4]], np.int64)
    for buf in (data, bytearray(data), memoryview(data)[0:], np.frombuffer(data, np.uint8)):
        got = slice_bytes(buf, ranges)
        assert all(type(g) is bytes for g in got)
        assert got == [data[s:e] for s, e in ranges.tolist()]
    assert slice_bytes(b"", np.zeros((0, 2), np.int64)) == []


@pytest.mark.parametrize("bad", [[-1, 4], [5, 4], [0, 10241]])
def test_slice_bytes_checks_ranges(bad):
    from deeplake_loader._kernels.chunk import slice_bytes

    with pytest.raises(ValueError, match="range 1 "):
        slice_bytes(bytes(10240), np.array([[0, 1], bad], np.int64))
