"""Writing Deep Lake 3 datasets that deeplake 3.9.52 opens, reads, appends to and commits on
(READER_SKETCH §2): new datasets, appends to the head of a branch (copy-on-write after a commit),
linked hidden tensors kept in step, tiling of samples over the chunk size, and ``commit``.

``extend`` turns every sample of every tensor into its stored form first (validation, dtype cast,
encoding); only when all of them succeeded does anything change, in memory. ``flush`` then writes
chunks, chunk indexes, tensor metas and the dataset meta, in that order, each key atomically.
"""

from __future__ import annotations

import json
import secrets
import struct
import time
import uuid

import numpy as np

from ..errors import (CorruptDatasetError, DecodeError, DeepLakeLoaderError, InvalidTensorGroupNameError,
                      InvalidTensorNameError, LinkedFileError, SampleAppendError, SampleExtendError,
                      TensorAlreadyExistsError, UnsupportedError)
from . import FIRST_COMMIT_ID, FORMAT_VERSION, compression, media, polygon
from . import htypes as H
from .chunk import Chunk, serialize
from .encoders import ChunkIdEncoder, SequenceEncoder, TileEncoder, version_header
from .links import Links, parse_creds_index
from .meta import dumps_meta, dumps_sample, read_json
from .version import VC_KEY, prefix

DATASET_META = "dataset_meta.json"
_COPIED_PER_TENSOR = ("tensor_meta.json", "chunks_index/unsharded", "tiles_index/unsharded",
                      "sequence_index/unsharded", "creds_index/unsharded", "tensor_info.json")


def _node(branch, parent):
    return {"branch": branch, "parent": parent, "children": [], "commit_message": None, "commit_time": None,
            "commit_user_name": None, "is_checkpoint": False, "total_samples_processed": 0}


def create_dataset(storage) -> None:
    """The files of a new, empty dataset on the FIRST commit of main."""
    meta = {"allow_delete": True, "default_index": [{"start": None, "step": None, "stop": None}], "groups": [],
            "hidden_tensors": [], "tensor_names": {}, "tensors": [], "version": FORMAT_VERSION}
    storage.put(DATASET_META, dumps_meta(meta))
    vc = {"commits": {FIRST_COMMIT_ID: _node("main", None)}, "branches": {"main": FIRST_COMMIT_ID}}
    storage.put(VC_KEY, json.dumps(vc).encode())


class SampleError(SampleAppendError, SampleExtendError, ValueError):
    """A sample that cannot be stored in its tensor (names tensor and position in the call); caught
    by deeplake's names for it from append() and from extend()."""


class Stored:
    """One sample in stored form: its shape and payload (bytes), or the array for image canvases;
    ``info``: what deeplake keeps for it in the hidden ``_<tensor>_info`` tensor (files appended
    with ``read``); ``bounds``: the shape the tensor's shape bounds take from it when that is not
    ``shape`` (a link sample stores its path, of shape (1,), and counts as the linked file's)."""

    __slots__ = ("shape", "payload", "array", "info", "bounds", "creds")

    def __init__(self, shape, payload=b"", array=None, info=None, bounds=None, creds=0):
        self.shape, self.payload, self.array = shape, payload, array
        self.info, self.bounds, self.creds = info, bounds, creds

    @property
    def nbytes(self):
        return len(self.payload) if self.array is None else self.array.nbytes


class _Tail:
    """The open last chunk: its id, samples and their running byte count."""

    __slots__ = ("cid", "samples", "nbytes")

    def __init__(self, cid, samples):
        self.cid, self.samples = cid, samples
        self.nbytes = sum(x.nbytes for x in samples)

    def add(self, s):
        self.samples.append(s)
        self.nbytes += s.nbytes


class TensorWriter:
    """Pending appends of one tensor and the state needed to write them."""

    def __init__(self, storage, vs, name, key, meta, info, new=False):
        self.storage, self.vs, self.name, self.key = storage, vs, name, key
        self.meta, self.info, self.new, self.created = meta, info, new, new
        self.start = 0 if new else None  # first row this commit adds (commit_diff), set on first add
        base = vs.key(key) + "/"
        self.base = base
        self.enc = ChunkIdEncoder.parse(storage.get_or_none(base + "chunks_index/unsharded"), tensor=name,
                                        key=base + "chunks_index/unsharded")
        self.tiles = TileEncoder.parse(storage.get_or_none(base + "tiles_index/unsharded"), tensor=name,
                                       key=base + "tiles_index/unsharded")
        self.seq = self.creds = None
        if meta.get("is_sequence"):  # sequences: rows of the sequence index over the flat items
            k = base + "sequence_index/unsharded"
            self.seq = SequenceEncoder.parse(storage.get_or_none(k), tensor=name, key=k)
        if meta.get("is_link"):  # link samples: which creds key each reaches its file with
            k = base + "creds_index/unsharded"
            self.creds = parse_creds_index(storage.get_or_none(k), tensor=name, key=k)
        self._forget_unflushed()
        self.tail = None  # the open last chunk (_Tail)
        self.dirty_chunks: dict = {}  # chunk id -> [Stored] to write
        self.tile_chunks: dict = {}  # chunk id -> Stored (one tile)
        self.pending = 0
        self.info_dirty = new
        self.meta_dirty = new
        self._links = None  # format.links.Links, to verify linked files (made on first use)

    def _forget_unflushed(self):
        """tensor_meta.json is written last by flush(), so its length is what was committed. A flush
        cut short (a killed process) can leave the chunk and tile indexes covering rows past it: those
        rows are forgotten here (and the indexes rewritten by the next flush; until then the reader
        refuses the tensor), and _load_tail drops their samples from the tail chunk, so that an append
        (even of no rows) continues at the committed length."""
        length = self.meta.get("length") or 0
        enc, tiles = self.enc.truncated(length), {g: v for g, v in self.tiles.entries.items() if g < length}
        self.index_dirty = enc is not self.enc or len(tiles) != len(self.tiles.entries)
        self.enc, self.tiles.entries = enc, tiles
        if self.seq is not None and self.seq.num_items > length:
            self.seq, self.index_dirty = self.seq.truncated(length), True
        if self.creds is not None and len(self.creds) and int(self.creds[-1, 1]) >= length:
            keep = self.creds[self.creds[:, 1] < length]
            tail = self.creds[self.creds[:, 1] >= length][:1]
            if length and (not len(keep) or int(keep[-1, 1]) < length - 1) and len(tail):
                keep = np.concatenate([keep, [[tail[0, 0], length - 1]]])
            self.creds, self.index_dirty = keep.astype(np.int64).reshape(-1, 2), True

    # ------------------------------------------------------------------------------- samples
    @property
    def htype(self):
        return self.meta.get("htype") or "generic"

    @property
    def max_chunk_size(self):
        return self.meta.get("max_chunk_size") or H.DEFAULT_MAX_CHUNK_SIZE

    @property
    def tiling_threshold(self):
        t = self.meta.get("tiling_threshold")
        return H.DEFAULT_TILING_THRESHOLD if t is None else t

    def prepare(self, samples):
        """[Stored] for samples (sequence tensors: their items, flat) plus the meta changes they
        imply; raises SampleError naming the tensor and position, changing nothing."""
        plan = {"dtype": self.meta.get("dtype"), "class_names": list(self.info.get("class_names") or []),
                "seq": None}
        out = []
        if self.seq is not None:
            plan["seq"] = []
        for i, s in enumerate(samples):
            try:
                if self.seq is None:
                    out.append(self._prepare_one(s, plan))
                    continue
                if s is None:
                    s = []
                if isinstance(s, (str, bytes, dict)) or not hasattr(s, "__len__"):
                    raise TypeError(f"a sample of a sequence tensor is a list of items, got {type(s).__name__}")
                items = [self._prepare_one(x, plan) for x in s]
                out.extend(items)
                plan["seq"].append(len(items))
            except (SampleError, UnsupportedError):
                raise
            except (ValueError, TypeError, OverflowError, DecodeError, LinkedFileError, FileNotFoundError) as e:
                raise SampleError(f"tensor '{self.name}': sample {i} of this append cannot be stored: {e}") from None
        return out, plan

    def _prepare_one(self, s, plan):
        h = self.htype
        if self.meta.get("is_link"):
            return self._prepare_link(s, plan)
        if h == "polygon":
            return self._prepare_polygons(s, plan)
        if h in H.TEXT:
            return self._prepare_text(s)
        if h == "class_label":
            s = self._labels(s, plan)
        sc = self.meta.get("sample_compression")
        from ..sample import Sample

        if isinstance(s, Sample):
            if sc is not None and s.compression == sc and sc in compression.IMAGE_CODECS:
                shape = tuple(s.shape)
                self._check_ndim(shape, plan)
                plan["dtype"] = plan["dtype"] or "uint8"
                return Stored(shape, s.buffer, info=self._image_info(s))
            if s.is_media or media.family_of(sc) is not None:
                return self._prepare_media(s, plan)
            s = s.array
        if media.family_of(sc) is not None and s is not None:
            raise ValueError(f"In order to store {media.family_of(sc)} data, you should use "
                             f"`deeplake_loader.read(path_to_file)` or create the tensor with sample_compression=None: "
                             f"arrays are not compressed to {sc}")
        if s is None:
            return Stored(None)
        arr = np.asarray(s)
        if arr.dtype.kind in "OUSV":
            raise TypeError(f"expected a number or an array, got {type(s).__name__} ({str(s)[:40]!r})")
        arr = self._cast(arr, plan)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        known = self.meta.get("max_shape") or plan.get("ndim_shape")
        if h in H.IMAGE and arr.ndim == 2 and not (known and len(known) == 2):
            arr = arr[..., None]  # grayscale is (H, W, 1), unless the tensor already holds 2-D images
        self._check_ndim(arr.shape, plan)
        arr = np.ascontiguousarray(arr)
        cc = self.meta.get("chunk_compression")
        if cc is not None and cc not in compression.BYTE_CODECS:
            return Stored(arr.shape, array=arr)
        if sc in compression.IMAGE_CODECS:
            return Stored(arr.shape, compression.encode_image(arr, sc))
        raw = arr.tobytes()
        return Stored(arr.shape, compression.lz4_compress(raw) if sc == "lz4" else raw)

    def _image_info(self, s):
        """The info of an image file appended with read(): deeplake's keys (exif left empty)."""
        return {"exif": {}, "shape": list(s.shape), "format": s.compression,
                **({"filename": s.path} if s.path else {}), "modified": False}

    def _prepare_media(self, s, plan):
        """A media file appended as it is (deeplake cannot recompress media files)."""
        sc = self.meta.get("sample_compression")
        if s.compression != sc:
            raise ValueError(f"the file is {s.compression!r} and the tensor's sample_compression is {sc!r}; media "
                             "files are stored as they are, so they must match (deeplake refuses to recompress them)")
        shape = tuple(int(x) for x in s.shape)
        self._check_ndim(shape, plan)
        if plan["dtype"] in (None, "Any", "List", "str"):
            plan["dtype"] = np.dtype(s.dtype).name
        info = s.meta
        info["modified"] = False
        return Stored(shape, s.buffer, info=info)

    def _prepare_polygons(self, s, plan):
        dtype = plan["dtype"] or "float32"
        if s is not None and not isinstance(s, (list, tuple, np.ndarray)):
            raise TypeError(f"a polygon sample is a list of (points, ndim) arrays, got {type(s).__name__}")
        payload, shape = polygon.encode(s, dtype)
        if shape is not None:
            self._check_ndim(shape, plan)
        plan["dtype"] = np.dtype(dtype).name
        if self.meta.get("sample_compression") == "lz4":
            payload = compression.lz4_compress(payload)
        return Stored(shape, payload)

    def _prepare_link(self, s, plan):
        """A link sample: its path stored as text (shape (1,)), verified like deeplake's
        ``verify=True``: the file is read and its shape is what the tensor's bounds and the hidden
        shape tensor take."""
        from ..sample import Link

        if s is None:
            return Stored((1,), b"", bounds=None, creds=0)
        if isinstance(s, str):
            raise TypeError("a link tensor takes deeplake_loader.link(path) samples, not plain strings")
        if not isinstance(s, Link):
            raise TypeError(f"a link tensor takes deeplake_loader.link(path) samples, got {type(s).__name__}")
        if self._links is None:
            self._links = Links(self.storage)
        creds = 0
        if s.creds_key is not None:
            keys = self._links.creds_keys
            if s.creds_key not in keys:
                raise ValueError(f"creds key '{s.creds_key}' is not one of this dataset's creds keys {keys}")
            creds = keys.index(s.creds_key) + 1
        bounds, info = None, {}
        if self.meta.get("verify", True):
            buf = self._links.fetch(s.path, s.creds_key, tensor=self.name)
            codec = media.sniff(buf, s.path) if self.htype in media.HTYPES else None
            from ..sample import Sample

            sample = Sample(s.path, buffer=buf, compression=codec)
            bounds = tuple(int(x) for x in sample.shape)
            if self.htype in H.INFO_HTYPES:
                info = sample.meta if sample.is_media else self._image_info(sample)
                info["modified"] = False
            if plan["dtype"] in (None, "Any", "List", "str"):
                plan["dtype"] = np.dtype(sample.dtype).name if sample.is_media else "uint8"
        return Stored((1,), s.path.encode("utf-8"), info=info, bounds=bounds, creds=creds)

    def _prepare_text(self, s):
        h = self.htype
        if h == "text":
            if s is None:
                s = ""
            if isinstance(s, np.ndarray) and s.dtype.kind == "U" and s.size == 1:
                s = str(s.reshape(-1)[0])
            if not isinstance(s, str):
                raise TypeError(f"a text sample must be a str, got {type(s).__name__}")
            raw, shape = s.encode("utf-8"), (1,)
        elif h == "json":
            raw, shape = dumps_sample({} if s is None else s).encode("utf-8"), (1,)
        else:
            if s is None:
                s = []
            if h == "tag" and isinstance(s, str):
                s = [s]
            if isinstance(s, np.ndarray):
                s = s.tolist()
            if not isinstance(s, (list, tuple)):
                raise TypeError(f"a {h} sample must be a list, got {type(s).__name__}")
            raw, shape = dumps_sample(list(s)).encode("utf-8"), (len(s),)
        if self.meta.get("sample_compression") == "lz4":
            raw = compression.lz4_compress(raw)
        return Stored(shape, raw)

    def _labels(self, s, plan):
        if s is None:
            return None
        values = s.tolist() if isinstance(s, np.ndarray) else s
        scalar = not isinstance(values, (list, tuple))
        out = []
        for v in ([values] if scalar else values):
            if isinstance(v, str):
                if v not in plan["class_names"]:
                    plan["class_names"].append(v)
                v = plan["class_names"].index(v)
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 0:
                raise TypeError(f"a class label must be a class name or a non-negative int, got {v!r}")
            out.append(int(v))
        return np.array(out, np.uint32)

    def _cast(self, arr, plan):
        dtype = plan["dtype"]
        if dtype in (None, "Any", "List", "str"):
            plan["dtype"] = arr.dtype.name
            return arr
        target = np.dtype(dtype)
        if arr.dtype == target:
            return arr
        if arr.dtype.kind == "b" or np.can_cast(arr.dtype, target, casting="same_kind") or (
                arr.dtype.kind in "iu" and target.kind in "iuf"):
            out = arr.astype(target)
            if arr.dtype.kind in "iub" and target.kind in "iu" and not np.array_equal(out.astype(arr.dtype), arr):
                raise ValueError(f"values of dtype {arr.dtype} do not fit the tensor's dtype {target}")
            return out
        raise TypeError(f"dtype {arr.dtype} cannot be stored in a tensor of dtype {target} without losing values")

    def _check_ndim(self, shape, plan):
        known = self.meta.get("max_shape") or plan.get("ndim_shape")
        if known and len(known) != len(shape):
            raise ValueError(f"shape {tuple(shape)} has {len(shape)} dimensions, the tensor's samples have "
                             f"{len(known)} (e.g. {tuple(known)})")
        if not known:
            plan["ndim_shape"] = list(shape)

    # -------------------------------------------------------------------------------- appending
    def _ndim(self):
        if self.meta.get("is_link"):
            return 1  # chunks hold paths
        return len(self.meta.get("max_shape") or [])

    def _load_tail(self):
        """The last chunk, reopened for appending if this commit owns it and it has room."""
        if not len(self.enc.table):
            return None
        last = self.enc.table[-1]
        name = ChunkIdEncoder.name(last[0])
        first = int(self.enc.table[-2, 1]) + 1 if len(self.enc.table) > 1 else 0
        if int(last[1]) in self.tiles.entries:
            return None
        owned = self.vs.head == FIRST_COMMIT_ID or name in self.vs.chunk_set(self.vs.head, self.key)
        if not owned:
            return None
        key = self.vs.chunk_key(self.key, name)
        buf = self.storage.get_or_none(key)
        if buf is None:
            raise CorruptDatasetError("chunk file is missing", tensor=self.name, key=key)
        chunk = Chunk.from_bytes(buf, chunk_compression=self.meta.get("chunk_compression"), key=key,
                                 tensor=self.name)
        n, indexed = chunk.num_samples, int(last[1]) + 1 - first
        if n < indexed:
            raise CorruptDatasetError(f"chunk holds {n} samples, the chunk index says {indexed}",
                                      tensor=self.name, key=key)
        stored = []
        canvas = chunk.canvas is not None or (self.meta.get("chunk_compression") not in (None, "lz4"))
        for local in range(indexed):
            shape = chunk.shape(local)
            if canvas:
                stored.append(Stored(shape, array=chunk.canvas_sample(local)))
            else:
                stored.append(Stored(shape, bytes(chunk.payload(local))))
        if n > indexed:  # samples of a flush cut short (see _forget_unflushed): rewrite without them
            self.dirty_chunks[int(last[0])] = stored
        return _Tail(int(last[0]), stored)

    def add(self, stored, plan):
        """Take prepared samples (no validation left to fail)."""
        if self.start is None:
            self.start = self.meta["length"]
        if self.tail is None and self.pending == 0:
            self.tail = self._load_tail()
        if plan.get("dtype") and self.meta.get("dtype") in (None, "Any", "List", "str") and \
                self.htype not in H.TEXT:
            self.meta["dtype"] = plan["dtype"]
        if plan["class_names"] != list(self.info.get("class_names") or []) and self.htype == "class_label":
            self.info["class_names"] = plan["class_names"]
            self.info_dirty = True
        length = self.meta["length"]
        half = self.max_chunk_size // 2
        for s in stored:
            g = length
            length += 1
            if s.shape is None:
                ndim = self._ndim() or len(plan.get("ndim_shape") or []) or (3 if self.htype in H.IMAGE else 0)
                if ndim:
                    self._empty(s, ndim)
            if self.creds is not None:
                if s.bounds is not None:
                    self._bounds(s.bounds)
                self._creds_row(s.creds, g)
            elif s.shape is not None:
                self._bounds(s.shape)
            if self._tileable(s):
                self._close_tail(g - 1)
                self._tile(s, g)
                continue
            tail = self.tail
            if tail is None or (tail.samples and tail.nbytes + s.nbytes > half):
                self._close_tail(g - 1)
                tail = self.tail = _Tail(uuid.uuid4().int >> 64, [])
                self.enc.append_row(tail.cid, g)
            tail.add(s)
            self.dirty_chunks[tail.cid] = tail.samples
        if self.tail is not None:
            self.enc.set_last(length - 1)
        self.meta["length"] = length
        for n in plan.get("seq") or ():
            self.seq.append(n)
        if plan.get("seq") is not None or self.creds is not None:
            self.index_dirty = True
        self.pending += len(stored)
        self.meta_dirty = True

    def _creds_row(self, enc, g):
        """Item ``g`` reaches its file with creds encoding ``enc`` (runs of one encoding share a row)."""
        if len(self.creds) and int(self.creds[-1, 0]) == enc and int(self.creds[-1, 1]) == g - 1:
            self.creds[-1, 1] = g
        else:
            self.creds = np.concatenate([self.creds, np.array([[enc, g]], np.int64)])

    def _close_tail(self, last):
        """The open chunk ends at row ``last``: fix its chunk-index row before another row follows."""
        if self.tail is not None:
            self.enc.set_last(last)
            self.tail = None

    def _empty(self, s, ndim):
        """An empty sample (None) gets an all-zero shape once the tensor's ndim is known."""
        s.shape = (0,) * ndim
        cc = self.meta.get("chunk_compression")
        if cc is not None and cc not in compression.BYTE_CODECS:
            s.array = np.zeros(s.shape, np.uint8)

    def _bounds(self, shape):
        lo, hi = self.meta.get("min_shape") or [], self.meta.get("max_shape") or []
        if not hi:
            self.meta["min_shape"], self.meta["max_shape"] = list(shape), list(shape)
        else:
            self.meta["min_shape"] = [min(a, b) for a, b in zip(lo, shape)]
            self.meta["max_shape"] = [max(a, b) for a, b in zip(hi, shape)]

    def _tileable(self, s):
        if s.array is not None or self.htype in H.TEXT or self.meta.get("chunk_compression") is not None:
            return False
        if self.meta.get("is_link") or self.htype == "polygon" or \
                media.family_of(self.meta.get("sample_compression")) is not None:
            return False  # files are stored whole (deeplake does not tile media files either)
        limit = self.tiling_threshold
        return (limit != -1 and s.nbytes > limit) or s.nbytes > self.max_chunk_size

    def _tile(self, s, g):
        """Split one sample over several chunks (spec §6): tiles in C order over the layout grid."""
        sc = self.meta.get("sample_compression")
        dtype = np.dtype(self.meta["dtype"])
        arr = self._decode_for_tiling(s, sc, dtype)
        split_dims = arr.ndim - 1 if (self.htype in H.IMAGE or sc in compression.IMAGE_CODECS) and arr.ndim == 3 \
            else arr.ndim
        tile = list(arr.shape)
        target = max(1, min(self.max_chunk_size, self.tiling_threshold if self.tiling_threshold != -1
                            else self.max_chunk_size) // 2)
        while int(np.prod(tile)) * dtype.itemsize > target and max(tile[:split_dims]) > 1:
            k = int(np.argmax(tile[:split_dims]))
            tile[k] = -(-tile[k] // 2)
        layout = [-(-a // t) for a, t in zip(arr.shape, tile)]
        for coord in np.ndindex(*layout):
            sl = tuple(slice(c * t, min((c + 1) * t, a)) for c, t, a in zip(coord, tile, arr.shape))
            part = np.ascontiguousarray(arr[sl])
            if sc in compression.IMAGE_CODECS:
                payload = compression.encode_image(part, sc)
            elif sc == "lz4":
                payload = compression.lz4_compress(part.tobytes())
            else:
                payload = part.tobytes()
            cid = uuid.uuid4().int >> 64
            self.enc.append_row(cid, g)
            self.tile_chunks[cid] = Stored(part.shape, payload)
        self.tiles.entries[g] = (tuple(arr.shape), tuple(tile))

    def _decode_for_tiling(self, s, sc, dtype):
        if sc in compression.IMAGE_CODECS:
            arr = compression.pil_decode(s.payload)
            return arr.reshape(s.shape)
        raw = compression.lz4_decompress(s.payload) if sc == "lz4" else s.payload
        return np.frombuffer(raw, dtype=dtype).reshape(s.shape)

    # ---------------------------------------------------------------------------------- writing
    def _chunk_bytes(self, stored):
        cc = self.meta.get("chunk_compression")
        for s in stored:  # empty samples appended before the tensor's ndim was known (deeplake fills them too)
            if s.shape is None:
                self._empty(s, self._ndim() or 1)
                self._bounds(s.shape)
        shapes = [s.shape for s in stored]
        ndim = len(shapes[0]) if shapes else self._ndim()
        if cc is not None and cc not in compression.BYTE_CODECS:
            canvas = compression.build_canvas([s.array for s in stored])
            data = compression.encode_image(canvas, cc) if canvas.size else b""
            return serialize(shapes, None, data, with_positions=False, ndim=ndim)
        data = b"".join(s.payload for s in stored)
        if cc == "lz4":
            return serialize(shapes, [len(s.payload) for s in stored], compression.lz4_compress(data), ndim=ndim)
        return serialize(shapes, [len(s.payload) for s in stored], data, ndim=ndim)

    def _chunk_key(self, cid):
        name = ChunkIdEncoder.name(cid)
        if self.vs.head == FIRST_COMMIT_ID:
            return f"{self.key}/chunks/{name}", name
        return f"{prefix(self.vs.head)}{self.key}/chunks/{name}", name

    def flush(self) -> bool:
        """Write what is pending; True if anything was written."""
        if not (self.dirty_chunks or self.tile_chunks or self.meta_dirty or self.info_dirty or self.index_dirty):
            return False
        new_names = []
        for cid, stored in self.dirty_chunks.items():
            key, name = self._chunk_key(cid)
            self.storage.put(key, self._chunk_bytes(stored))
            new_names.append(name)
        for cid, s in self.tile_chunks.items():
            key, name = self._chunk_key(cid)
            self.storage.put(key, serialize([s.shape], None, s.payload, with_positions=False))
            new_names.append(name)
        if self.vs.head != FIRST_COMMIT_ID and new_names:
            cs_key = f"{prefix(self.vs.head)}{self.key}/chunk_set"
            current = self.vs.chunk_set(self.vs.head, self.key)
            names = list(current) + [n for n in new_names if n not in current]
            text = ",".join(n if current.get(n, (None, None)) == (None, None) else
                            ":".join([n] + [x for x in current[n] if x]) for n in names)
            self.storage.put(cs_key, text.encode())
            self.vs.forget_chunk_sets()
        if self.dirty_chunks or self.tile_chunks or self.new or self.index_dirty:
            self.storage.put(self.base + "chunks_index/unsharded", self.enc.tobytes())
            self.storage.put(self.base + "tiles_index/unsharded", self.tiles.tobytes())
            if self.seq is not None:
                self.storage.put(self.base + "sequence_index/unsharded", self.seq.tobytes())
            if self.creds is not None:
                self.storage.put(self.base + "creds_index/unsharded",
                                 version_header() + np.ascontiguousarray(self.creds, "<u4").tobytes())
        if self.info_dirty or self.new:
            self.storage.put(self.base + "tensor_info.json", dumps_meta(self.info))
        if self.meta_dirty:
            self.meta["version"] = self.meta.get("version") or FORMAT_VERSION
            self.storage.put(self.base + "tensor_meta.json", dumps_meta(self.meta))
            self._write_commit_diff()
        self.dirty_chunks, self.tile_chunks = {}, {}
        self.meta_dirty = self.info_dirty = self.new = self.index_dirty = False
        self.pending = 0
        return True

    def _write_commit_diff(self):
        """commit_diff of this commit (spec §8.5, big-endian): created flag and the added range."""
        key = self.base + "commit_diff"
        raw = self.storage.get_or_none(key)
        created, info_upd, transformed, start, updated_tail = 0, 0, 0, None, b"\x00" * 8 + b"\x00" + b"\x00" * 8
        if raw and len(raw) >= 19:
            created, info_upd, transformed = raw[0], raw[1], raw[2]
            start, _ = struct.unpack(">QQ", raw[3:19])
            updated_tail = raw[19:]
        if start is None:
            start = self.start
            created = created or int(self.created)
        out = bytes([created, info_upd, transformed]) + struct.pack(">QQ", start, self.meta["length"]) + updated_tail
        self.storage.put(key, out)



def _shape_of(s, parent):
    """The shape deeplake's hidden shape tensor records for a prepared sample."""
    if s.bounds is not None:
        return s.bounds
    if parent.meta.get("is_link"):
        return (0,)
    return s.shape if s.shape is not None else (0,) * max(parent._ndim(), 1)


class DatasetWriter:
    """Writes to the head of a branch."""

    def __init__(self, storage, version_state):
        self.storage, self.vs = storage, version_state
        self.meta = read_json(storage, version_state.key(DATASET_META))
        self.tensors: dict = {}  # key -> TensorWriter
        self.info = None
        self.meta_dirty = False

    @property
    def dirty(self) -> bool:
        return self.meta_dirty or self.info is not None or any(
            t.dirty_chunks or t.tile_chunks or t.meta_dirty or t.info_dirty or t.index_dirty
            for t in self.tensors.values())

    def _names(self):
        return self.meta.get("tensor_names") or {k: k for k in self.meta.get("tensors", [])}

    def _tensor(self, name) -> TensorWriter:
        names = self._names()
        key = names[name]
        if key not in self.tensors:
            base = self.vs.key(key) + "/"
            meta = read_json(self.storage, base + "tensor_meta.json", tensor=name)
            info = read_json(self.storage, base + "tensor_info.json", tensor=name, default={})
            t = TensorWriter(self.storage, self.vs, name, key, meta, info)
            self.tensors[key] = t
        return self.tensors[key]

    def create_tensor(self, name, htype="generic", dtype=None, sample_compression=H.UNSPECIFIED,
                      chunk_compression=None, max_chunk_size=None, tiling_threshold=None, hidden=False, verify=True,
                      **kwargs):
        names = self._names()
        if name in names:
            raise TensorAlreadyExistsError(name)
        if not name or name.startswith("/") or name.endswith("/") or "//" in name:
            raise InvalidTensorNameError(f"invalid tensor name {name!r}")
        if dtype is not None:
            dtype = np.dtype(dtype).name
        base, _, is_link = H.split_htype(htype)
        given = sample_compression is not H.UNSPECIFIED
        if not given:
            sample_compression = H.DEFAULT_SAMPLE_COMPRESSION.get(base)
        sample_compression = compression.normalize(sample_compression)
        chunk_compression = compression.normalize(chunk_compression)
        for c in (sample_compression, chunk_compression):
            compression.check_supported(c, tensor=name)
        H.check_media_compression(name, base, sample_compression, chunk_compression, given)
        htype = htype or "generic"
        meta, info = H.new_tensor_meta(name, htype, dtype, sample_compression, chunk_compression, max_chunk_size,
                                       tiling_threshold, FORMAT_VERSION, kwargs)
        meta["verify"] = bool(verify)  # link tensors: read each linked file when it is appended
        hidden_specs = []  # the hidden tensors deeplake keeps in step with this one
        if base in H.INFO_HTYPES and (base in H.MEDIA or is_link):
            hidden_specs.append(("info", "json", {"extend": "extend_info", "flatten_sequence": True,
                                                  "update": "update_info"}))
        if is_link or H.split_htype(htype)[1]:  # deeplake reads link and sequence shapes from it
            hidden_specs.append(("shape", "generic", {"extend": "extend_shape", "flatten_sequence": True,
                                                      "update": "update_shape"}))
        key = name if name not in self.meta.get("tensors", []) else f"{name}_{secrets.token_hex(2)}"
        if "/" in name:
            self._add_group(name.rsplit("/", 1)[0])
        self.meta.setdefault("tensors", []).append(key)
        self.meta.setdefault("tensor_names", {})[name] = key
        t = TensorWriter(self.storage, self.vs, name, key, meta, info, new=True)
        self.tensors[key] = t
        for suffix, hidden_htype, link in hidden_specs:
            parts = name.split("/")
            hname = "/".join(parts[:-1] + [f"_{parts[-1]}_{suffix}"])
            hmeta, hinfo = H.new_tensor_meta(hname, hidden_htype, "int64" if suffix == "shape" else None, None, None,
                                             None, None, FORMAT_VERSION, {})
            hmeta["hidden"] = True
            if suffix in ("info", "shape"):
                hmeta["max_chunk_size"] = 4_000_000
            hkey = hname if hname not in self.meta["tensors"] else f"{hname}_{secrets.token_hex(2)}"
            self.meta["tensors"].append(hkey)
            self.meta["tensor_names"][hname] = hkey
            self.meta.setdefault("hidden_tensors", []).append(hkey)
            meta["links"][hkey] = link
            self.tensors[hkey] = TensorWriter(self.storage, self.vs, hname, hkey, hmeta, hinfo, new=True)
        self.meta_dirty = True
        self.flush()

    def create_group(self, name):
        """A group (and its parent groups) in dataset_meta.json's ``groups``."""
        if not name or name.startswith("/") or name.endswith("/") or "//" in name:
            raise InvalidTensorGroupNameError(f"invalid group name {name!r}")
        self._add_group(name)
        self.meta_dirty = True
        self.flush()

    def _add_group(self, name):
        """``name`` and its parents, deepest first as deeplake lists them (``a/b``, then ``a``); a
        tensor of one of those names is a TensorAlreadyExistsError."""
        names, groups, chain = self._names(), self.meta.setdefault("groups", []), []
        while name:
            if name in names:
                raise TensorAlreadyExistsError(name)
            chain.append(name)
            name = name.rpartition("/")[0]
        groups.extend(g for g in chain if g not in groups)

    def extend(self, columns: dict):
        """Append rows; every sample of every tensor (and of linked hidden tensors) is prepared before
        any state changes."""
        prepared = []
        for name, samples in columns.items():
            t = self._tensor(name)
            stored, plan = t.prepare(samples)
            prepared.append((t, stored, plan))
            for link_key, spec in (t.meta.get("links") or {}).items():
                prepared.append(self._linked(t, link_key, spec, stored, plan))
        for t, stored, plan in prepared:
            t.add(stored, plan)

    def _linked(self, parent, link_key, spec, stored, plan):
        """Samples of a hidden tensor that deeplake keeps in step with its parent (spec §3 links)."""
        fn = spec.get("extend")
        by_key = {k: n for n, k in self._names().items()}
        if link_key not in by_key:
            raise CorruptDatasetError(f"linked tensor key '{link_key}' is not in the dataset", tensor=parent.name)
        t = self._tensor(by_key[link_key])
        per_sequence = plan.get("seq") is not None and not spec.get("flatten_sequence")
        if fn == "extend_id":
            n = len(plan["seq"]) if per_sequence else len(stored)
            values = [np.array([uuid.uuid4().int >> 64], np.uint64) for _ in range(n)]
        elif per_sequence:
            raise UnsupportedError(f"tensor '{parent.name}' keeps '{fn}' per sequence, which deeplake_loader "
                                   "cannot update")
        elif fn == "extend_shape":
            values = [np.array(_shape_of(s, parent), np.int64) for s in stored]
        elif fn == "extend_info":
            values = [dict(s.info) if s.info else {} for s in stored]
        elif fn == "extend_len":
            values = [np.array([s.shape[0] if s.shape else 0], np.int64) for s in stored]
        else:
            raise UnsupportedError(f"tensor '{parent.name}' has a linked tensor kept by '{fn}', which deeplake_loader "
                                   "cannot update")
        out, plan = t.prepare(values)
        return t, out, plan

    def set_info(self, data: dict):
        self.info = dict(data)

    def set_tensor_info(self, name, data: dict):
        t = self._tensor(name)
        t.info = dict(data)
        t.info_dirty = True

    def flush(self) -> list:
        """Write everything pending; returns the names of the tensors that changed."""
        changed = []
        by_key = {k: n for n, k in self._names().items()}
        for key, t in self.tensors.items():
            if t.flush():
                changed.append(by_key.get(key, t.name))
        if self.info is not None:
            self.storage.put(self.vs.key("dataset_info.json"), dumps_meta(self.info))
            self.info = None
        if self.meta_dirty:
            self.storage.put(self.vs.key(DATASET_META), dumps_meta(self.meta))
            self.meta_dirty = False
        return changed

    def commit(self, message=None) -> str:
        """Freeze the head: copy metas to a new head folder with empty chunk_sets (spec §8.2)."""
        self.flush()
        vs = self.vs
        old, new = vs.head, secrets.token_hex(20)
        copy_metas(self.storage, old, new, self.meta.get("tensors", []))
        commits = vs.info["commits"]
        node = commits[old]
        node.update(commit_message=message, commit_time=time.time())
        node.setdefault("children", []).append(new)
        commits[new] = _node(vs.branch, old)
        vs.info["branches"][vs.branch] = new
        self.storage.put(prefix(old) + "commit_info.json", json.dumps(node).encode())
        self.storage.put(VC_KEY, vs.dumps())
        vs.head = new
        vs.chain.insert(0, new)
        vs.forget_chunk_sets()
        self.tensors.clear()
        return old


def copy_metas(storage, src: str, dst: str, tensor_keys) -> None:
    """The metadata of commit ``src`` copied into the folder of a new head ``dst``, with an empty
    chunk_set per tensor: chunks stay where they are (spec §8.2; a commit and a new branch alike)."""
    a, b = prefix(src), prefix(dst)
    for name in ("dataset_meta.json", "dataset_info.json"):
        data = storage.get_or_none(a + name)
        if data is not None:
            storage.put(b + name, data)
    for key in tensor_keys:
        for f in _COPIED_PER_TENSOR:
            data = storage.get_or_none(f"{a}{key}/{f}")
            if data is not None:
                storage.put(f"{b}{key}/{f}", data)
        storage.put(f"{b}{key}/chunk_set", b"")


def create_branch(storage, vs, name: str, source: str | None = None) -> str:
    """A new branch ``name`` whose head is a child of commit ``vs.head`` (deeplake's
    ``checkout(name, create=True)``), with the metadata of ``source`` (default ``vs.head``);
    ``vs`` then points at the new head. Returns its id."""
    commits = vs.info["commits"]
    parent, new = vs.head, secrets.token_hex(20)
    source = parent if source is None else source
    meta = read_json(storage, prefix(source) + DATASET_META, default={})
    copy_metas(storage, source, new, meta.get("tensors", []))
    node = commits[parent]
    node.setdefault("children", []).append(new)
    commits[new] = _node(name, parent)
    vs.info["branches"][name] = new
    storage.put(prefix(new) + "commit_info.json", json.dumps(commits[new]).encode())
    storage.put(prefix(parent) + "commit_info.json", json.dumps(node).encode())
    storage.put(VC_KEY, vs.dumps())
    vs.move(branch=name)
    return new


def head_has_changes(storage, vs) -> bool:
    """deeplake's test before it branches off a head: the FIRST commit always counts as changed;
    another head has changes when a tensor has a commit_diff there (created or appended to) or its
    dataset meta / info differ from its parent's."""
    if vs.head == FIRST_COMMIT_ID:
        return True
    here, parent = prefix(vs.head), prefix(vs.chain[1]) if len(vs.chain) > 1 else ""
    meta = read_json(storage, here + DATASET_META, default={})
    if any(storage.exists(f"{here}{key}/commit_diff") for key in meta.get("tensors", [])):
        return True
    return any(storage.get_or_none(here + name) != storage.get_or_none(parent + name)
               for name in (DATASET_META, "dataset_info.json"))
