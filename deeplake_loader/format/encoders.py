"""Run-length encoders of the format (spec §4.1, §5, §6, §10.1): chunk ids, tiles, sequences.

Every table is a numpy array whose last column is ``last_index`` (inclusive); lookups are
vectorised ``searchsorted`` so a whole batch of rows is located at once.
"""

from __future__ import annotations

import struct

import numpy as np

from ..errors import CorruptDatasetError
from . import FORMAT_VERSION


def version_header(version: str = FORMAT_VERSION) -> bytes:
    v = version.encode("ascii")
    return bytes([len(v)]) + v


def split_version(buf: bytes, *, tensor=None, key=None):
    """(version string, offset after it) of a binary file that starts with a version header."""
    if len(buf) < 1 or len(buf) < 1 + buf[0]:
        raise CorruptDatasetError("truncated version header", tensor=tensor, key=key)
    try:
        version = bytes(buf[1:1 + buf[0]]).decode("ascii")
    except UnicodeDecodeError:
        raise CorruptDatasetError("version header is not ASCII", tensor=tensor, key=key) from None
    return version, 1 + buf[0]


def _version_tuple(v: str):
    out = []
    for part in v.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


def locate(last_index: np.ndarray, items):
    """Row of each item in an RLE table and the item's offset inside its row's run:
    (row ndarray, first-item-of-row ndarray)."""
    items = np.asarray(items, dtype=np.int64)
    if not len(last_index):  # an empty table: every item is past its end (callers check rows >= len)
        return np.zeros(items.shape, np.int64), np.zeros(items.shape, np.int64)
    rows = np.searchsorted(last_index, items, side="left")
    first = np.where(rows > 0, last_index[np.maximum(rows - 1, 0)].astype(np.int64) + 1, 0)
    return rows, first


class ChunkIdEncoder:
    """Rows of [chunk_id, last_global_index] (uint64). A tiled sample spans consecutive rows with the
    same last index."""

    def __init__(self, table: np.ndarray | None = None):
        self.table = np.zeros((0, 2), np.uint64) if table is None else table

    @classmethod
    def parse(cls, buf: bytes | None, *, tensor=None, key=None) -> "ChunkIdEncoder":
        if not buf:
            return cls()
        version, o = split_version(buf, tensor=tensor, key=key)
        width = 4
        if _version_tuple(version) >= (2, 7, 6):
            if len(buf) < o + 1:
                raise CorruptDatasetError("chunk id encoder lacks its width byte", tensor=tensor, key=key)
            width = buf[o]
            o += 1
        if width not in (4, 8):
            raise CorruptDatasetError(f"chunk id encoder width {width} (expected 4 or 8)", tensor=tensor, key=key)
        body = len(buf) - o
        if body % (2 * width):
            raise CorruptDatasetError(f"chunk id encoder body of {body} bytes is not whole rows of "
                                      f"{2 * width}", tensor=tensor, key=key)
        table = np.frombuffer(buf, dtype=f"<u{width}", offset=o).reshape(-1, 2).astype(np.uint64)
        last = table[:, 1]
        if len(last) > 1 and np.any(last[1:] < last[:-1]):
            raise CorruptDatasetError("chunk id encoder rows are not sorted by last index",
                                      tensor=tensor, key=key)
        return cls(table)

    def tobytes(self) -> bytes:
        return version_header() + b"\x08" + np.ascontiguousarray(self.table, dtype="<u8").tobytes()

    @property
    def num_samples(self) -> int:
        return int(self.table[-1, 1]) + 1 if len(self.table) else 0

    @property
    def last_index(self) -> np.ndarray:
        return self.table[:, 1].astype(np.int64)

    def locate(self, items):
        """(row, local index in that row's chunk) for each global item (first row of a tiled one)."""
        rows, first = locate(self.last_index, items)
        return rows, np.asarray(items, dtype=np.int64) - first

    def rows_of(self, item: int) -> range:
        """Every row holding item (several for a tiled sample)."""
        last = self.last_index
        lo = int(np.searchsorted(last, item, side="left"))
        hi = int(np.searchsorted(last, item, side="right"))
        return range(lo, hi)

    @staticmethod
    def name(chunk_id) -> str:
        return format(int(chunk_id), "x")

    def truncated(self, length: int) -> "ChunkIdEncoder":
        """The index of the first ``length`` rows: rows past them dropped, the last kept row ending at
        ``length - 1`` (what is left of an append cut short before tensor_meta.json was written)."""
        if not len(self.table) or int(self.table[-1, 1]) < length:
            return self
        n, last = np.uint64(length), self.table[:, 1]
        first = np.concatenate([np.zeros(1, np.uint64), last[:-1] + np.uint64(1)])  # > last: a tile's next row
        table = self.table[(last < n) | ((first < n) & (first <= last))].copy()
        if len(table):
            table[-1, 1] = min(int(table[-1, 1]), length - 1)
        return ChunkIdEncoder(table)

    def append_row(self, chunk_id: int, last: int):
        self.table = np.concatenate([self.table, np.array([[chunk_id, last]], np.uint64)])

    def set_last(self, last: int):
        if not self.table.flags.writeable:
            self.table = self.table.copy()
        self.table[-1, 1] = last


class TileEncoder:
    """{global sample index: (sample shape, tile shape)} (spec §6)."""

    def __init__(self, entries: dict | None = None):
        self.entries = entries or {}

    @classmethod
    def parse(cls, buf: bytes | None, *, tensor=None, key=None) -> "TileEncoder":
        if not buf:
            return cls()
        try:
            return cls(cls._parse(buf, "<", split_version(buf, tensor=tensor, key=key)[1]))
        except (CorruptDatasetError, struct.error, ValueError):
            try:  # legacy: big-endian, no version header
                return cls(cls._parse(buf, ">", 0))
            except (struct.error, ValueError):
                raise CorruptDatasetError("unreadable tile encoder", tensor=tensor, key=key) from None

    @staticmethod
    def _parse(buf, order, o):
        (n,) = struct.unpack_from(order + "Q", buf, o)
        o += 8
        if n == 0:
            if o != len(buf):
                raise ValueError("trailing bytes")
            return {}
        (d,) = struct.unpack_from(order + "Q", buf, o)
        o += 8
        if d > 32 or len(buf) - o != n * 8 * (1 + 2 * d):
            raise ValueError("size mismatch")
        arr = np.frombuffer(buf, dtype=order + "u8", offset=o).reshape(n, 1 + 2 * d).astype(np.int64)
        return {int(r[0]): (tuple(int(x) for x in r[1:1 + d]), tuple(int(x) for x in r[1 + d:])) for r in arr}

    def tobytes(self) -> bytes:
        out = [version_header(), struct.pack("<Q", len(self.entries))]
        if self.entries:
            d = len(next(iter(self.entries.values()))[0])
            out.append(struct.pack("<Q", d))
            for idx in sorted(self.entries):
                s, t = self.entries[idx]
                out.append(np.array([idx, *s, *t], dtype="<u8").tobytes())
        return b"".join(out)


class SequenceEncoder:
    """Rows of [items_in_sequence, start_item, last_sequence_index] (spec §10.1)."""

    def __init__(self, table):
        self.table = table

    @classmethod
    def parse(cls, buf, *, tensor=None, key=None):
        if not buf:
            return cls(np.zeros((0, 3), np.int64))
        _, o = split_version(buf, tensor=tensor, key=key)
        if (len(buf) - o) % 12:
            raise CorruptDatasetError("sequence encoder is not whole rows", tensor=tensor, key=key)
        return cls(np.frombuffer(buf, dtype="<u4", offset=o).reshape(-1, 3).astype(np.int64))

    def __len__(self):
        return int(self.table[-1, 2]) + 1 if len(self.table) else 0

    @property
    def num_items(self) -> int:
        if not len(self.table):
            return 0
        n, start, last = self.table[-1]
        first = int(self.table[-2, 2]) + 1 if len(self.table) > 1 else 0
        return int(start + (last - first + 1) * n)

    def append(self, n_items: int) -> None:
        """One more sequence of ``n_items`` items, after the last (a run of equal lengths shares a row)."""
        seq = len(self)
        if len(self.table) and int(self.table[-1, 0]) == n_items:
            table = self.table.copy()
            table[-1, 2] = seq
        else:
            table = np.concatenate([self.table, np.array([[n_items, self.num_items, seq]], np.int64)])
        self.table = table

    def tobytes(self) -> bytes:
        return version_header() + np.ascontiguousarray(self.table, dtype="<u4").tobytes()

    def truncated(self, num_items: int) -> "SequenceEncoder":
        """The sequences whose items all lie below ``num_items`` (a flush cut short leaves more)."""
        out = SequenceEncoder(np.zeros((0, 3), np.int64))
        for s in range(len(self)):
            r = self.items(s)
            if r.stop > num_items:
                break
            out.append(len(r))
        return out

    def items(self, seq: int) -> range:
        rows, first = locate(self.table[:, 2], [seq])
        n, start, _ = self.table[rows[0]]
        begin = int(start + (seq - first[0]) * n)
        return range(begin, begin + int(n))
