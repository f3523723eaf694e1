"""Reading one tensor at one commit (spec §3-§10): metas, encoders, chunks, decoded samples.

``TensorReader`` is what every consumer uses: the Dataset API for single samples, the query engine
for whole columns (``column``), the loader for chunk plans and stored payload bytes.
"""

from __future__ import annotations

import numpy as np

from ..errors import CorruptDatasetError, DecodeError, DeepLakeLoaderError, RemoteReadError, UnsupportedError
from . import compression, media, polygon
from .chunk import Chunk
from .chunk_lru import ChunkLRU
from .._kernels.chunk import parse_header
from .encoders import ChunkIdEncoder, SequenceEncoder, TileEncoder, locate
from .links import parse_creds_index
from .meta import loads, read_json

_HEADER_GUESS = 65536
_WHOLE_CHUNK = object()
TEXT_HTYPES = {"text", "json", "list", "tag"}
IMAGE_HTYPES = {"image", "image.rgb", "image.gray"}
LINK_HTYPES = IMAGE_HTYPES | media.HTYPES
SUPPORTED_HTYPES = {None, "generic", "image", "image.rgb", "image.gray", "class_label", "bbox", "bbox.3d",
                    "text", "json", "list", "tag", "embedding", "binary_mask", "segment_mask",
                    "keypoints_coco", "point", "instance_label", "intrinsics", "polygon"} | media.HTYPES
NO_CAST_HTYPES = {"dicom", "mesh"}  # deeplake returns these as the file decodes, not in the tensor's dtype


class TiledLink:
    """A linked tiled sample: its path array (the tile layout's shape), sample and tile shapes."""

    __slots__ = ("paths", "sample_shape", "tile_shape")

    def __init__(self, paths, sample_shape, tile_shape):
        self.paths, self.sample_shape, self.tile_shape = paths, sample_shape, tile_shape

    def __bool__(self):
        return True


class _Fetched:
    """Values read together (StorageProvider.get_many), served to read_json and the parsers."""

    def __init__(self, values: dict):
        self.values = values

    def get_or_none(self, key):
        return self.values.get(key)


class TensorReader:
    """A tensor at the commit of ``version_state``. Rows are global sample indices (sequence
    tensors: sequence indices)."""

    def __init__(self, storage, version_state, name: str, key: str, *, lru: ChunkLRU | None = None, links=None):
        self.storage, self.vs, self.name, self.key = storage, version_state, name, key
        self.links = links  # format.links.Links of the dataset, for link tensors
        base = version_state.key(key) + "/"
        self.meta_key = base + "tensor_meta.json"
        enc_key, tiles_key, seq_key, creds_key = (base + f + "/unsharded" for f in
                                                  ("chunks_index", "tiles_index", "sequence_index", "creds_index"))
        got = _Fetched(storage.get_many([self.meta_key, base + "tensor_info.json", enc_key, tiles_key]))
        self.meta = read_json(got, self.meta_key, tensor=name)  # (one round trip on remote stores)
        self.info = read_json(got, base + "tensor_info.json", tensor=name, default={})
        self.enc = ChunkIdEncoder.parse(got.get_or_none(enc_key), tensor=name, key=enc_key)
        self.tiles = TileEncoder.parse(got.get_or_none(tiles_key), tensor=name, key=tiles_key).entries
        self.seq = None
        if self.meta.get("is_sequence"):
            self.seq = SequenceEncoder.parse(storage.get_or_none(seq_key), tensor=name, key=seq_key)
        self.creds_table = None
        if self.is_link:
            self.creds_table = parse_creds_index(storage.get_or_none(creds_key), tensor=name, key=creds_key)
        self._validate()
        self._lru = lru if lru is not None else ChunkLRU()  # the dataset's memory cache of parsed chunks

    # ---------------------------------------------------------------------------------- metadata
    def _validate(self):
        m = self.meta
        length = m.get("length")
        if not isinstance(length, int) or isinstance(length, bool) or length < 0:
            raise CorruptDatasetError(f"tensor_meta 'length' is {length!r}", tensor=self.name, key=self.meta_key)
        if len(self.enc.table) and self.enc.num_samples != length:
            raise CorruptDatasetError(f"the chunk index covers {self.enc.num_samples} samples but tensor_meta "
                                      f"says {length}", tensor=self.name,
                                      key=self.vs.key(self.key) + "/chunks_index/unsharded")
        if not len(self.enc.table) and length:
            raise CorruptDatasetError(f"tensor_meta says {length} samples but there is no chunk index",
                                      tensor=self.name, key=self.vs.key(self.key) + "/chunks_index/unsharded")
        for field in ("htype", "sample_compression", "chunk_compression", "dtype"):
            if not isinstance(m.get(field), (str, type(None))):
                raise CorruptDatasetError(f"tensor_meta '{field}' is {m.get(field)!r}, not a string or null",
                                          tensor=self.name, key=self.meta_key)
        lo, hi = m.get("min_shape", []), m.get("max_shape", [])
        for field, v in (("min_shape", lo), ("max_shape", hi)):
            if v is not None and not (isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool)
                                                                    and x >= 0 for x in v)):
                raise CorruptDatasetError(f"tensor_meta '{field}' is {v!r}, not a list of sizes",
                                          tensor=self.name, key=self.meta_key)
        if length and not self.is_text and not m.get("is_link"):
            try:
                ok = np.dtype(m.get("dtype")).itemsize > 0 and m.get("dtype") is not None
            except TypeError:
                ok = False
            if not ok:
                raise CorruptDatasetError(f"tensor_meta 'dtype' is {m.get('dtype')!r} for a tensor of "
                                          f"{m.get('htype')!r} samples", tensor=self.name, key=self.meta_key)
        if m.get("dtype") not in (None, "str", "Any", "List") and not str(m.get("dtype")).startswith("typing"):
            try:
                np.dtype(m["dtype"])
            except TypeError:
                raise CorruptDatasetError(f"unknown dtype {m['dtype']!r}", tensor=self.name, key=self.meta_key) from None

    @property
    def base_htype(self):
        return self.meta.get("htype") or "generic"

    @property
    def htype(self) -> str:
        h = self.base_htype
        if self.meta.get("is_link"):
            h = f"link[{h}]"
        if self.meta.get("is_sequence"):
            h = f"sequence[{h}]"
        return h

    @property
    def is_text(self) -> bool:
        return self.base_htype in TEXT_HTYPES

    @property
    def is_link(self) -> bool:
        return bool(self.meta.get("is_link"))

    @property
    def dtype(self):
        d = self.meta.get("dtype")
        if self.base_htype in TEXT_HTYPES:  # deeplake reports str for every text-like htype
            return np.dtype(str)
        return None if d is None else np.dtype(d)

    @property
    def sample_compression(self):
        return self.meta.get("sample_compression")

    @property
    def chunk_compression(self):
        return self.meta.get("chunk_compression")

    @property
    def class_names(self) -> list:
        return list(self.info.get("class_names") or [])

    @property
    def min_shape(self):
        return tuple(self.meta.get("min_shape") or ())

    @property
    def max_shape(self):
        return tuple(self.meta.get("max_shape") or ())

    def __len__(self) -> int:
        return len(self.seq) if self.seq is not None else int(self.meta.get("length", 0))

    def check_readable(self):
        """UnsupportedError for htypes/codecs this reader does not decode."""
        if self.is_link:
            if self.base_htype not in LINK_HTYPES or self.seq is not None or self.links is None:
                raise UnsupportedError(f"tensor '{self.name}' has htype {self.htype}: links to images, video, "
                                       "audio, dicom, nifti, point clouds and meshes are read, not sequences of them")
            if self.media_family is not None:
                media.require(self.media_family, tensor=self.name)
            return
        if self.meta.get("htype") not in SUPPORTED_HTYPES:
            raise UnsupportedError(f"tensor '{self.name}' has htype '{self.meta.get('htype')}', which is not "
                                   "supported")
        compression.check_supported(self.sample_compression, tensor=self.name)
        compression.check_supported(self.chunk_compression, tensor=self.name, chunk=True)
        if self.media_family is not None:
            media.require(self.media_family, tensor=self.name)

    @property
    def media_family(self):
        """video / audio / dicom / nifti / point_cloud / mesh when samples are such files, else None
        (link tensors: their htype's family, whatever the linked files' suffixes)."""
        fam = media.family_of(self.sample_compression)
        if fam is None and self.base_htype in media.HTYPES and (self.is_link or self.sample_compression is None):
            fam = self.base_htype if self.is_link else None
        return fam

    # ------------------------------------------------------------------------------------ chunks
    def load_chunk(self, name: str, parts=None) -> Chunk:
        """The parsed chunk (from the memory cache, or read whole: storage.read_blob, in ``parts``
        range requests if given). Safe to call from several threads (the loader's fetch window does)."""
        chunk = self._lru.get((self.key, name))
        if chunk is not None:
            return chunk
        key = self.vs.chunk_key(self.key, name)
        try:
            buf = self.storage.read_blob(key, parts=parts)
        except KeyError:
            raise CorruptDatasetError("chunk file is missing", tensor=self.name, key=key) from None
        except RemoteReadError as e:
            raise e.naming(tensor=self.name, chunk=key) from e.__cause__
        chunk = Chunk.from_bytes(buf, chunk_compression=self.chunk_compression, key=key, tensor=self.name)
        self._lru.put((self.key, name), chunk)
        return chunk

    def chunk_size(self, name: str):
        """Bytes of the chunk file when the storage knows them without reading it, else None."""
        return self.storage.size_of(self.vs.chunk_key(self.key, name))

    def is_cached(self, name: str) -> bool:
        return (self.key, name) in self._lru

    def _chunk_for(self, name: str, row) -> Chunk:
        """load_chunk, with an error that also names the sample (row) it was loaded for."""
        try:
            return self.load_chunk(name)
        except (CorruptDatasetError, DecodeError) as e:
            raise self._wrap(e, int(row)) from None
        except RemoteReadError as e:
            raise e.naming(rows=[int(row)]) from e.__cause__

    def _items(self, rows) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = len(self)
        bad = rows[(rows < 0) | (rows >= n)]
        if len(bad):
            raise IndexError(f"index {int(bad[0])} is out of range for tensor '{self.name}' of length {n}")
        return rows

    def chunk_plan(self, rows, *, items=False):
        """Group rows by chunk: [(chunk name or None, positions into rows, local indices)], in order of
        first appearance. Tiled samples come as (None, [position], [row]) groups: read them with read().
        ``items``: rows are flat items of a sequence tensor."""
        if self.seq is not None and not items:
            raise UnsupportedError(f"chunk plans of sequence tensor '{self.name}'; read whole sequences")
        rows = np.asarray(rows, dtype=np.int64).reshape(-1) if items else self._items(rows)
        out = []
        if not len(rows):
            return out
        erow, local = self.enc.locate(rows)
        if self.tiles:
            tiled = np.isin(rows, np.fromiter(self.tiles, np.int64))
        else:
            tiled = np.zeros(len(rows), bool)
        order = np.argsort(erow, kind="stable")
        bounds = np.nonzero(np.diff(erow[order]))[0] + 1
        for group in np.split(order, bounds):
            plain = group[~tiled[group]]
            if len(plain):
                out.append((ChunkIdEncoder.name(self.enc.table[erow[plain[0]], 0]), plain, local[plain]))
            for pos in group[tiled[group]]:
                out.append((None, np.array([pos]), np.array([rows[pos]])))
        out.sort(key=lambda g: int(g[1][0]))
        return out

    # ----------------------------------------------------------------------------------- samples
    def _wrap(self, err, row, key=None):
        """The same error, naming this tensor and the sample."""
        if isinstance(err, (DecodeError, CorruptDatasetError)):
            return err.at(tensor=self.name, index=row, key=key)
        return err

    def _chunk_call(self, fn, rows, pos, local):
        """fn(local) for a group of a chunk; on a corrupt table, the error names the first bad row."""
        try:
            return fn(local)
        except CorruptDatasetError:
            for p, loc in zip(pos, local):
                try:
                    fn([loc])
                except CorruptDatasetError as e:
                    raise self._wrap(e, int(rows[p])) from None
            raise

    def payload_ranges(self, chunk, rows, pos, local) -> np.ndarray:
        """[start, end) in ``chunk.data`` of the samples ``local`` (rows ``rows[pos]``), checked:
        an image sample may be stored with no bytes only when its shape is empty (an appended
        None); any other empty payload is a CorruptDatasetError naming its row."""
        ranges = self._chunk_call(chunk.byte_ranges, rows, pos, local)
        if self.sample_compression in compression.IMAGE_CODECS:
            empty = np.nonzero(ranges[:, 1] == ranges[:, 0])[0]
            if len(empty):
                pos, local = np.asarray(pos)[empty], np.asarray(local)[empty]
                for p, shape in zip(pos, self._chunk_call(chunk.shapes_of, rows, pos, local).tolist()):
                    if len(shape) and 0 not in shape:
                        raise CorruptDatasetError(f"the sample has no stored bytes but the chunk's shape table gives "
                                                  f"it shape {tuple(shape)} (only a sample of empty shape may be "
                                                  "stored empty)", tensor=self.name, index=int(rows[p]), key=chunk.key)
        return ranges

    def _decode_text(self, raw, row, key):
        try:
            if self.sample_compression == "lz4":
                raw = compression.lz4_decompress(raw)
            text = bytes(raw).decode("utf-8")
        except Exception as e:  # noqa: BLE001 - lz4 / utf-8 errors on corrupt payloads
            raise CorruptDatasetError(f"text payload does not decode ({type(e).__name__}: {e})",
                                      tensor=self.name, index=row, key=key) from None
        if self.base_htype == "text":
            return text
        return loads(text, tensor=self.name, index=row, key=key)

    def _decode_media(self, raw, shape, row, key, frames=None):
        """A media file (video, audio, dicom, nifti, las, ply) decoded as deeplake 3.9.52 reads it
        (in the tensor's dtype, except for dicom and meshes); DecodeError naming tensor and row."""
        sc = self.sample_compression
        if 0 in shape:  # an empty sample (None appended)
            return np.zeros(shape, self.dtype if self.dtype is not None and self.dtype != object else np.uint8)
        try:
            arr = media.decode(sc, raw, shape, frames=frames, tensor=self.name)
        except DecodeError as e:
            raise e.at(tensor=self.name, index=row, key=key, prefix=f"{sc} sample: ") from None
        return self._cast_media(arr)

    def _cast_media(self, arr):
        if self.base_htype in NO_CAST_HTYPES or self.dtype is None or self.dtype == object:
            return arr
        return arr.astype(self.dtype, copy=False)

    def _decode_polygons(self, raw, shape, row, key):
        try:
            if self.sample_compression == "lz4":
                raw = compression.lz4_decompress(raw)
            return polygon.decode(raw, self.dtype or np.float32, int(shape[-1]) if len(shape) else 0)
        except (CorruptDatasetError, ValueError) as e:
            reason = e.reason if isinstance(e, CorruptDatasetError) else str(e)
            raise CorruptDatasetError(reason, tensor=self.name, index=row, key=key) from None

    def _decode_array(self, raw, shape, row, key, frames=None):
        if self.base_htype == "polygon":
            return self._decode_polygons(raw, shape, row, key)
        if media.family_of(self.sample_compression) is not None:
            return self._decode_media(raw, shape, row, key, frames)
        dtype = self.dtype or np.dtype(np.uint8)
        if 0 in shape:
            return np.zeros(shape, dtype)
        sc = self.sample_compression
        try:
            if sc == "lz4":
                raw = compression.lz4_decompress(raw)
            elif sc is not None:
                return self._fit(compression.decode_images([raw], sc, [shape])[0], shape, row, key)
            return np.frombuffer(raw, dtype=dtype).reshape(shape)
        except (ValueError, RuntimeError) as e:
            if isinstance(e, DecodeError):
                raise e.at(tensor=self.name, index=row, key=key) from None
            raise CorruptDatasetError(f"payload of {len(raw)} bytes does not hold a {dtype} sample of shape "
                                      f"{shape} ({e})", tensor=self.name, index=row, key=key) from None

    def _read_item(self, item: int, frames=None):
        if self.is_link:
            return self._read_links(np.array([item], np.int64), frames=frames)[0]
        if item in self.tiles:
            return self._read_tiled(item)
        erow, local = self.enc.locate([item])
        name = ChunkIdEncoder.name(self.enc.table[erow[0], 0])
        if self.storage.prefers_ranges and not self.is_cached(name) and self.chunk_compression is None:
            value = self._read_item_ranged(item, name, int(local[0]), frames)
            if value is not _WHOLE_CHUNK:
                return value
        try:
            chunk = self.load_chunk(name)
            local = int(local[0])
            if local >= chunk.num_samples:
                raise CorruptDatasetError(f"the chunk index points to sample {local} of a chunk holding "
                                          f"{chunk.num_samples}", key=chunk.key)
            if self.is_text:
                return self._decode_text(chunk.payload(local), item, chunk.key)
            shape = chunk.shape(local)
            if self.chunk_compression is not None and self.chunk_compression not in compression.BYTE_CODECS:
                return chunk.canvas_sample(local).astype(self.dtype or np.uint8, copy=False)
            return self._decode_array(chunk.payload(local), shape, item, chunk.key, frames)
        except (CorruptDatasetError, DecodeError) as e:
            raise self._wrap(e, item) from None

    def _read_item_ranged(self, item: int, name: str, local: int, frames=None):
        """One sample of a remote chunk with two range reads: the header (first 64 kB, the same
        guess deeplake makes), then the sample's bytes. _WHOLE_CHUNK when the whole chunk is needed."""
        key = self.vs.chunk_key(self.key, name)
        try:
            head = self.storage.get_range(key, 0, _HEADER_GUESS)
        except KeyError:
            raise CorruptDatasetError("chunk file is missing", tensor=self.name, index=item, key=key) from None
        except RemoteReadError as e:
            raise e.naming(tensor=self.name, chunk=key, rows=[item]) from e.__cause__
        try:
            _, shapes, bpos, offset = parse_header(head)
        except ValueError:
            return _WHOLE_CHUNK  # a header longer than the guess (or a broken one: the full read says which)
        if not len(bpos):
            return _WHOLE_CHUNK
        header = Chunk(shapes, bpos, memoryview(b""), key=key, tensor=self.name)
        if local >= header.num_samples:
            raise CorruptDatasetError(f"the chunk index points to sample {local} of a chunk holding "
                                      f"{header.num_samples}", tensor=self.name, index=item, key=key)
        rows, first = locate(header._bpos_last, [local])
        nbytes = int(bpos[rows[0], 0])
        start = offset + int(bpos[rows[0], 1]) + (local - int(first[0])) * nbytes
        try:
            raw = self.storage.get_range(key, start, start + nbytes) if nbytes else b""
        except RemoteReadError as e:
            raise e.naming(tensor=self.name, chunk=key, rows=[item]) from e.__cause__
        if len(raw) != nbytes:
            raise CorruptDatasetError(f"sample needs bytes {start}..{start + nbytes} of the chunk, which ends at "
                                      f"{start + len(raw)} (truncated?)", tensor=self.name, index=item, key=key)
        if self.is_text:
            return self._decode_text(raw, item, key)
        try:
            return self._decode_array(raw, header.shape(local), item, key, frames)
        except CorruptDatasetError as e:
            raise self._wrap(e, item) from None

    def _read_tiled(self, item: int):
        sample_shape, tile_shape = self.tiles[item]
        hi = self.max_shape
        if (len(sample_shape) != len(tile_shape) or (hi and len(hi) != len(sample_shape))
                or any(t <= 0 for t in tile_shape) or (hi and any(s > h for s, h in zip(sample_shape, hi)))):
            raise CorruptDatasetError(f"tile index gives sample shape {sample_shape} and tile shape {tile_shape} "
                                      f"(tensor max_shape {hi})", tensor=self.name, index=item,
                                      key=self.vs.key(self.key) + "/tiles_index/unsharded")
        layout = [-(-s // t) for s, t in zip(sample_shape, tile_shape)]
        rows = self.enc.rows_of(item)
        if len(rows) != int(np.prod(layout)):
            raise CorruptDatasetError(f"tiled sample has {len(rows)} tile chunks, layout needs {int(np.prod(layout))}",
                                      tensor=self.name, index=item)
        out = np.zeros(sample_shape, self.dtype or np.uint8)
        for k, r in enumerate(rows):
            chunk = self._chunk_for(ChunkIdEncoder.name(self.enc.table[r, 0]), item)
            tshape = chunk.shape(0)
            if not len(chunk.data) and chunk.canvas is None:
                continue  # an all-zeros placeholder tile
            if chunk.canvas is not None:
                tile = chunk.canvas_sample(0)
            else:
                tile = self._decode_array(chunk.data, tshape, item, chunk.key)
            coord = np.unravel_index(k, layout)
            want = tuple(min(t, s - c * t) for c, t, s in zip(coord, tile_shape, sample_shape))
            if tile.shape[:len(want)] != want:
                raise CorruptDatasetError(f"tile {k} has shape {tile.shape}, its place in the sample needs {want}",
                                          tensor=self.name, index=item, key=chunk.key)
            sl = tuple(slice(c * t, c * t + s) for c, t, s in zip(coord, tile_shape, tile.shape))
            out[sl + (Ellipsis,)] = tile
        return out

    def read(self, row: int, frames=None):
        """The decoded sample: ndarray, str (text), dict/list (json/list/tag), a list of arrays
        (polygon); a list of items for sequence tensors. ``frames`` (video): an int or slice of
        frames, the only ones decoded."""
        self.check_readable()
        (row,) = self._items([row])
        if self.seq is not None:
            return [self._read_item(i) for i in self._seq_items(int(row))]
        return self._read_item(int(row), frames)

    def read_many(self, rows):
        """Samples of rows (a list); image files of one chunk go to the batch kernel together."""
        self.check_readable()
        rows = self._items(rows)
        if self.is_link and self.media_family is None:
            return self._read_links(rows)
        if self.seq is None and self.media_family is not None and not self.tiles:
            import os

            return self.decode_media(self.stored_bytes(rows), rows, threads=min(4, os.cpu_count() or 1))
        if self.seq is None and not self.is_text and self.sample_compression in compression.KERNEL_CODECS:
            return self._read_images(rows)
        if self.seq is None and (self.chunk_compression is None or self.chunk_compression in compression.BYTE_CODECS):
            return self._read_grouped(rows)
        return [self.read(int(r)) if self.seq is not None else self._read_item(int(r)) for r in rows]

    def shapes(self, rows) -> list:
        """The stored shape of each row (chunk shape tables; link tensors: None, the file decides)."""
        rows = self._items(rows)
        out = [None] * len(rows)
        if self.is_link:
            return out
        for name, pos, local in self.chunk_plan(rows):
            if name is None:
                out[pos[0]] = tuple(self.tiles[int(rows[pos[0]])][0])
                continue
            chunk = self._chunk_for(name, rows[pos[0]])
            for p, shape in zip(pos, self._chunk_call(chunk.shapes_of, rows, pos, local).tolist()):
                out[p] = tuple(int(x) for x in shape)
        return out

    def decode_media(self, bufs, rows, *, threads=1, alloc=None):
        """The media files ``bufs`` of ``rows`` (their stored payloads, or fetched linked files)
        decoded on ``threads`` threads, in the tensor's dtype as ``read`` gives them (a list);
        DecodeError naming tensor and row. ``alloc(shape, dtype)``: when every row is a video of
        one stored shape, the frames are decoded straight into one (rows, frames, H, W, 3) array
        it gives (the loader's pooled batch memory), which is returned instead of a list."""
        if alloc is not None and not self.is_link and media.family_of(self.sample_compression) == "video" \
                and len(rows):
            shapes = self.shapes(rows)
            if len(set(shapes)) == 1 and 0 not in shapes[0] and self.dtype == np.uint8:
                out = alloc((len(rows),) + shapes[0], np.uint8)
                try:
                    media.decode_many(self.sample_compression, bufs, shapes, threads=threads, tensor=self.name,
                                      outs=list(out))
                except DecodeError as e:
                    k = e.position or 0
                    raise e.at(tensor=self.name, index=int(rows[k]), prefix=f"{self.sample_compression} sample: ") \
                        from None
                return out
        rows = np.asarray(rows, np.int64)
        out = [None] * len(rows)
        if self.is_link:
            paths = self.link_paths(rows)
            todo = [k for k in range(len(rows)) if len(bufs[k])]
            codecs = [self.sample_compression if self.sample_compression in media.CODECS else
                      media.sniff(bufs[k], paths[k]) for k in todo]
            for k, c in zip(todo, codecs):
                if media.family_of(c) is None:
                    raise DecodeError(f"linked file '{paths[k]}' is not a {self.base_htype} file this reader knows",
                                      tensor=self.name, index=int(rows[k]))
            shapes, cast = [None] * len(todo), False
        else:
            stored = self.shapes(rows)
            todo = [k for k in range(len(rows)) if 0 not in stored[k]]
            for k in set(range(len(rows))) - set(todo):  # empty samples (None appended)
                out[k] = self._decode_media(b"", stored[k], int(rows[k]), None)
            codecs, shapes, cast = self.sample_compression, [stored[k] for k in todo], True
        try:
            got = media.decode_many(codecs, [bufs[k] for k in todo], shapes, threads=threads, tensor=self.name)
        except DecodeError as e:
            k = todo[e.position or 0]
            prefix = f"{self.sample_compression} sample: " if not self.is_link else \
                f"linked file '{self.link_paths([rows[k]])[0]}': "
            raise e.at(tensor=self.name, index=int(rows[k]), prefix=prefix) from None
        for k, arr in zip(todo, got):
            out[k] = self._cast_media(arr) if cast else arr
        for k in range(len(rows)):
            if out[k] is None:
                out[k] = np.zeros((0,) * max(len(self.max_shape), 1), self.dtype if self.dtype not in (None, object)
                                  else np.uint8)
        return out

    def _remote_single(self, rows) -> bool:
        """One row of a remote dataset whose chunk is not cached: read it with range requests."""
        if len(rows) != 1 or not self.storage.prefers_ranges or self.chunk_compression is not None:
            return False
        erow, _ = self.enc.locate(rows)
        return not self.is_cached(ChunkIdEncoder.name(self.enc.table[erow[0], 0]))

    def _read_grouped(self, rows):
        """Samples of rows chunk by chunk: one chunk load, one vectorised shape/byte-range lookup per
        chunk, then a per-sample decode of the payload slice."""
        if self._remote_single(rows):
            return [self._read_item(int(rows[0]))]
        out = [None] * len(rows)
        for name, pos, local in self.chunk_plan(rows):
            chunk = None if name is None else self._chunk_for(name, rows[pos[0]])
            if chunk is None or (len(local) and int(local.max()) >= chunk.num_samples):
                for p in pos:  # tiles; or a broken index that the per-sample path names exactly
                    out[p] = self._read_item(int(rows[p]))
                continue
            ranges = self._chunk_call(chunk.byte_ranges, rows, pos, local)
            data, key = chunk.data, chunk.key
            if self.is_text:
                for k, p in enumerate(pos):
                    out[p] = self._decode_text(data[ranges[k, 0]:ranges[k, 1]], int(rows[p]), key)
                continue
            shapes = self._chunk_call(chunk.shapes_of, rows, pos, local).tolist()
            for k, p in enumerate(pos):
                out[p] = self._decode_array(data[ranges[k, 0]:ranges[k, 1]], tuple(shapes[k]), int(rows[p]), key)
        return out

    def _read_images(self, rows):
        out = [None] * len(rows)
        for name, pos, local in self.chunk_plan(rows):
            if name is None:
                out[pos[0]] = self._read_item(int(local[0]))
                continue
            chunk = self._chunk_for(name, rows[pos[0]])
            shapes = [tuple(int(x) for x in s) for s in self._chunk_call(chunk.shapes_of, rows, pos, local)]
            ranges = self.payload_ranges(chunk, rows, pos, local)
            bufs = [chunk.data[s:e] for s, e in ranges]
            try:
                arrs = compression.decode_images(bufs, self.sample_compression, shapes)
            except DecodeError as e:
                p = pos[e.position] if e.position is not None else pos[0]
                raise e.at(tensor=self.name, index=int(rows[p]), key=chunk.key) from None
            for k, p in enumerate(pos):
                out[p] = self._fit(arrs[k], shapes[k], int(rows[p]), chunk.key)
        return out

    def link_paths(self, rows) -> list:
        """The path or URL each link sample holds (chunk payloads are UTF-8 text); a ``TiledLink``
        for a linked tiled sample (``deeplake.link_tiled``: an array of paths, one per tile)."""
        rows = np.asarray(rows, np.int64)
        out = [None] * len(rows)
        for name, pos, local in self.chunk_plan(rows):
            if name is None:  # a linked tiled sample
                out[pos[0]] = self._tiled_link(int(rows[pos[0]]))
                continue
            chunk = self._chunk_for(name, rows[pos[0]])
            ranges = self._chunk_call(chunk.byte_ranges, rows, pos, local)
            for k, p in enumerate(pos):
                raw = bytes(chunk.data[ranges[k, 0]:ranges[k, 1]])
                try:
                    out[p] = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise CorruptDatasetError("link sample is not a UTF-8 path", tensor=self.name, index=int(rows[p]),
                                              key=chunk.key) from None
        return out

    def _tiled_link(self, item: int) -> "TiledLink":
        """The path array of a linked tiled sample: its chunk's one payload is ``version, ndim byte,
        ndim x uint32 LE layout, NUL-terminated ASCII paths`` (C order)."""
        rows = self.enc.rows_of(item)
        chunk = self._chunk_for(ChunkIdEncoder.name(self.enc.table[rows[0], 0]), item)
        raw = bytes(chunk.payload(0))
        try:
            o = 1 + raw[0]
            ndim = raw[o]
            layout = tuple(int(x) for x in np.frombuffer(raw, "<u4", ndim, o + 1))
            paths = raw[o + 1 + 4 * ndim:].split(b"\x00")
            paths = [p.decode("ascii") for p in paths[:-1]] if paths and paths[-1] == b"" else None
            if paths is None or len(paths) != int(np.prod(layout)):
                raise ValueError(f"{0 if paths is None else len(paths)} paths for a layout of {layout}")
        except (IndexError, ValueError, UnicodeDecodeError) as e:
            raise CorruptDatasetError(f"linked tiled sample does not parse ({e})", tensor=self.name, index=item,
                                      key=chunk.key) from None
        sample_shape, tile_shape = self.tiles[item]
        return TiledLink(np.array(paths, dtype=object).reshape(layout), tuple(sample_shape), tuple(tile_shape))

    def _fetch_links(self, rows) -> list:
        """The bytes of each row's linked file (a list of them, in the path array's C order, for
        a linked tiled sample)."""
        paths = self.link_paths(rows)
        keys = [self.links.key_of(self.creds_table, int(r), self.name) for r in rows]
        bufs = [b""] * len(rows)
        flat, where = [], []
        for k, p in enumerate(paths):
            if isinstance(p, TiledLink):
                for t in p.paths.flat:
                    flat.append((t, keys[k], int(rows[k])))
                    where.append(k)
                bufs[k] = []
            elif p:  # an empty path is an empty sample
                flat.append((p, keys[k], int(rows[k])))
                where.append(k)
        got = self.links.fetch_many([f[0] for f in flat], [f[1] for f in flat], tensor=self.name,
                                    rows=[f[2] for f in flat])
        for k, b in zip(where, got):
            if isinstance(bufs[k], list):
                bufs[k].append(b)
            else:
                bufs[k] = b
        return bufs

    def _read_links(self, rows, frames=None) -> list:
        """Link samples: fetch each linked file, decode it by its own type (images in the tensor's
        dtype; media files as deeplake returns them for links, in the dtype they decode to)."""
        self.check_readable()
        bufs = self._fetch_links(rows)
        paths = None
        out = [None] * len(rows)
        for k, b in enumerate(bufs):
            if isinstance(b, list):  # a linked tiled sample
                if paths is None:
                    paths = self.link_paths(rows)
                out[k] = self._assemble_tiles(paths[k], b, int(rows[k]))
        plain = [k for k in range(len(rows)) if out[k] is None]
        if self.media_family is None:
            try:
                arrs = compression.decode_files([bufs[k] for k in plain])
            except DecodeError as e:
                p = plain[e.position if e.position is not None else 0]
                raise e.at(tensor=self.name, index=int(rows[p]),
                           prefix=f"linked file '{self.link_paths([rows[p]])[0]}': ") from None
            dtype = self.dtype or np.dtype(np.uint8)
            for k, a in zip(plain, arrs):
                out[k] = np.zeros((0, 0, 0), dtype) if a is None else a.astype(dtype, copy=False)
            return out
        for k in plain:
            if not len(bufs[k]):
                out[k] = np.zeros((0,) * max(len(self.max_shape), 1), self.dtype or np.uint8)
                continue
            path = self.link_paths([rows[k]])[0]
            codec = media.sniff(bufs[k], path) if self.sample_compression not in media.CODECS else \
                self.sample_compression
            if media.family_of(codec) is None:
                raise DecodeError(f"linked file '{path}' is not a {self.base_htype} file this reader knows",
                                  tensor=self.name, index=int(rows[k]))
            try:
                out[k] = media.decode(codec, bufs[k], None, frames=frames, tensor=self.name)
            except DecodeError as e:
                raise e.at(tensor=self.name, index=int(rows[k]), prefix=f"linked file '{path}': ") from None
        return out

    def _assemble_tiles(self, link, bufs, row):
        """A linked tiled sample: each tile's file decoded and put at its place in the layout."""
        try:
            tiles = compression.decode_files(bufs)
        except DecodeError as e:
            p = e.position if e.position is not None else 0
            raise e.at(tensor=self.name, index=row, prefix=f"linked tile '{link.paths.flat[p]}': ") from None
        out = np.zeros(link.sample_shape, self.dtype or np.uint8)
        for k, (coord, tile) in enumerate(zip(np.ndindex(*link.paths.shape), tiles)):
            tile = np.zeros((0,), out.dtype) if tile is None else tile.reshape(tile.shape[:len(link.tile_shape)])
            start = [c * t for c, t in zip(coord, link.tile_shape)] + [0] * (out.ndim - len(coord))
            sl = tuple(slice(a, a + n) for a, n in zip(start, tile.shape))
            if tile.shape != out[sl].shape:
                raise CorruptDatasetError(f"linked tile '{link.paths.flat[k]}' has shape {tile.shape}; its place in the "
                                          f"sample of shape {link.sample_shape} holds {out[sl].shape}",
                                          tensor=self.name, index=row)
            out[sl] = tile
        return out

    def _fit(self, arr, shape, row, key):
        """A decoded image in the sample shape the chunk header gives; an error naming the sample
        when the two disagree (a damaged header or payload)."""
        if 0 in shape:
            return np.zeros(shape, self.dtype or np.uint8)
        if arr is None or arr.size != int(np.prod(shape, dtype=np.float64)):
            got = "no pixels" if arr is None else f"shape {arr.shape}"
            raise CorruptDatasetError(f"image decodes to {got} but the chunk header says {shape}",
                                      tensor=self.name, index=row, key=key)
        return arr.reshape(shape).astype(self.dtype or np.uint8, copy=False)

    def _seq_items(self, row: int) -> range:
        """The flat items of sequence ``row``, checked against the chunk index."""
        items = self.seq.items(row)
        if items.start < 0 or items.stop > self.enc.num_samples:
            raise CorruptDatasetError(f"sequence index gives items {items.start}..{items.stop - 1}, the tensor holds "
                                      f"{self.enc.num_samples}", tensor=self.name, index=row,
                                      key=self.vs.key(self.key) + "/sequence_index/unsharded")
        return items

    def shape_of(self, row: int) -> tuple:
        (row,) = self._items([row])
        if self.seq is not None:  # items of different shapes: None where they differ (as deeplake)
            items = self._seq_items(int(row))
            shapes = [self.shape_of_item(i) for i in items]
            if not shapes:
                return (0,)
            dims = tuple(a[0] if len(set(a)) == 1 else None for a in zip(*shapes))
            return (len(items),) + dims
        return self.shape_of_item(int(row))

    def shape_of_item(self, item: int) -> tuple:
        if item in self.tiles:
            return tuple(self.tiles[item][0])
        if self.is_link:  # the chunk holds the path; the shape is the linked file's
            return tuple(self._read_links(np.array([item], np.int64))[0].shape)
        erow, local = self.enc.locate([item])
        chunk = self._chunk_for(ChunkIdEncoder.name(self.enc.table[erow[0], 0]), item)
        try:
            return chunk.shape(int(local[0]))
        except CorruptDatasetError as e:
            raise self._wrap(e, item) from None

    def stored_bytes(self, rows) -> list:
        """The stored payload of each row, without copies (e.g. the JPEG file of an image)."""
        rows = self._items(rows)
        if self.seq is not None:  # a sequence's items' payloads, one after the other (deeplake's tobytes)
            out = []
            for r in rows.tolist():
                items = np.asarray(list(self._seq_items(int(r))), np.int64)
                out.append(b"".join(bytes(b) for b in self._item_bytes(items)) if len(items) else b"")
            return out
        return self._item_bytes(rows)

    def _item_bytes(self, rows) -> list:
        if self.is_link:
            out = self._fetch_links(rows)
            for k, b in enumerate(out):
                if isinstance(b, list):
                    raise UnsupportedError(f"sample {int(rows[k])} of tensor '{self.name}' is a linked tiled sample: "
                                           "it has no single file (deeplake: 'Cannot read bytes for a link_tiled "
                                           "sample')")
            return out
        if self.chunk_compression is not None and self.chunk_compression not in compression.BYTE_CODECS:
            raise UnsupportedError(f"tensor '{self.name}' stores images as one {self.chunk_compression} canvas "
                                   "per chunk: samples have no stored bytes of their own")
        out = [None] * len(rows)
        for name, pos, local in self.chunk_plan(rows, items=self.seq is not None):
            if name is None:
                raise UnsupportedError(f"sample {int(local[0])} of tensor '{self.name}' is tiled: it has no single "
                                       "stored payload")
            chunk = self._chunk_for(name, rows[pos[0]])
            ranges = self.payload_ranges(chunk, rows, pos, local)
            for k, p in enumerate(pos):
                out[p] = chunk.data[ranges[k, 0]:ranges[k, 1]]
        return out

    @property
    def fixed_shape(self):
        """The one shape of every sample when the tensor stores them raw (or lz4-chunked) at a
        fixed shape, so a column is one array; else None."""
        fixed = (self.min_shape == self.max_shape and len(self.min_shape) and not self.is_text
                 and self.seq is None and not self.tiles
                 and self.sample_compression is None
                 and self.chunk_compression in (None, "lz4") and 0 not in self.min_shape)
        return tuple(self.min_shape) if fixed else None

    def column(self, rows=None):
        """Every row's value, reading each chunk once: one (N, *shape) array when the tensor has a
        fixed shape and is stored raw/lz4, else a list."""
        self.check_readable()
        rows = np.arange(len(self), dtype=np.int64) if rows is None else self._items(rows)
        shape = self.fixed_shape
        if shape is None or self._remote_single(rows):
            return self.read_many(rows)
        dtype = self.dtype
        out = np.empty((len(rows),) + shape, dtype)
        per = int(np.prod(shape)) * dtype.itemsize
        for name, pos, local in self.chunk_plan(rows):
            chunk = self._chunk_for(name, rows[pos[0]])
            n = chunk.num_samples
            if len(chunk.data) < n * per or (len(local) and local.max() >= n) \
                    or np.any(chunk.shapes[:, :-1] != shape):
                for p in pos:  # let the per-sample path name the broken sample
                    value = self._read_item(int(rows[p]))
                    if value.shape != shape:
                        raise CorruptDatasetError(f"sample of shape {value.shape} in a tensor whose samples all have "
                                                  f"shape {shape} (tensor_meta)", tensor=self.name,
                                                  index=int(rows[p]), key=chunk.key)
                    out[p] = value
                continue
            block = np.frombuffer(chunk.data, dtype=dtype, count=n * int(np.prod(shape))).reshape((n,) + shape)
            out[pos] = block[local]
        return out

    def ragged_column(self, rows=None):
        """(values (M, *trail), offsets (N+1)) of a tensor whose rows differ in their first dimension
        only (boxes, multi-labels), stored raw or lz4-chunked: row r is values[offsets[r]:offsets[r+1]].
        Built chunk by chunk by a native copy loop. None when the tensor is not of that kind."""
        from .._kernels.ragged import scatter_rows

        lo, hi = self.min_shape, self.max_shape
        if (self.is_text or self.seq is not None or self.tiles or self.sample_compression is not None
                or self.chunk_compression not in (None, "lz4") or not hi or tuple(lo[1:]) != tuple(hi[1:])):
            return None
        self.check_readable()
        rows = np.arange(len(self), dtype=np.int64) if rows is None else self._items(rows)
        trail = tuple(int(x) for x in hi[1:])
        dtype = self.dtype
        per = int(np.prod(trail)) * dtype.itemsize
        first = np.zeros(len(rows), np.int64)
        plan = self.chunk_plan(rows)
        for name, pos, local in plan:
            chunk = self._chunk_for(name, rows[pos[0]])
            shapes = self._chunk_call(chunk.shapes_of, rows, pos, local)
            if shapes.shape[1] != len(hi) or np.any(shapes[:, 1:] != trail):
                return None  # e.g. empty samples stored with another trailing shape
            first[pos] = shapes[:, 0]
        offsets = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(first, out=offsets[1:])
        out = np.empty(int(offsets[-1]) * per, np.uint8)
        for name, pos, local in plan:
            chunk = self._chunk_for(name, rows[pos[0]])
            ranges = self._chunk_call(chunk.byte_ranges, rows, pos, local)
            nbytes = ranges[:, 1] - ranges[:, 0]
            bad = np.nonzero(nbytes != first[pos] * per)[0]
            if len(bad):
                raise CorruptDatasetError(f"payload of {int(nbytes[bad[0]])} bytes for a sample of shape "
                                          f"{(int(first[pos[bad[0]]]),) + trail} {dtype}", tensor=self.name,
                                          index=int(rows[pos[bad[0]]]), key=chunk.key)
            scatter_rows(np.frombuffer(chunk.data, np.uint8), np.ascontiguousarray(ranges[:, 0]),
                         np.ascontiguousarray(nbytes), out, np.ascontiguousarray(offsets[pos] * per))
        return out.view(dtype).reshape((int(offsets[-1]),) + trail), offsets

    def forget(self):
        self._lru.clear(self.key)
