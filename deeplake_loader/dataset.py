"""The user-facing Dataset and Tensor (deeplake 3's API subset), and views over them.

A view is the same dataset with ``index_rows`` (int64 source row ids, or None for all rows);
views compose. Reads go through ``format.reader.TensorReader``; writes through
``format.writer.DatasetWriter``. Pending writes are flushed before any read. Version control
(``checkout``, ``commit``, ``branches``) moves the one ``VersionState`` every view and group of an
opened dataset shares; a write at a commit that is not a branch head first checks out a new
branch ``auto_<id>`` there, as deeplake does.
"""

from __future__ import annotations

import logging
import secrets

import numpy as np

from . import oss_loaders
from .errors import (CheckoutError, DatasetExistsError, DatasetNotFoundError, DeepLakeLoaderError,
                     DynamicTensorNumpyError, InvalidTensorGroupNameError, InvalidTensorNameError, ReadOnlyError,
                     TensorAlreadyExistsError, TensorDoesNotExistError, TensorGroupAlreadyExistsError)
from .format import FIRST_COMMIT_ID
from .format.htypes import UNSPECIFIED
from .format.meta import loads, read_json
from .format.reader import TensorReader
from .format.version import VC_KEY, VersionState
from .sample_forms import data_column, info_tensor_key, numpy_form
from .storage import storage_for

DATASET_META = "dataset_meta.json"
log = logging.getLogger("deeplake_loader")


def _exists(storage) -> bool:
    return storage.exists(DATASET_META) or storage.exists(VC_KEY)


def exists(path, **storage_options) -> bool:
    """True if path holds a Deep Lake 3 dataset."""
    return _exists(storage_for(path, **storage_options))


def load(path, read_only=None, *, branch: str = "main", commit: str | None = None, creds=None,
         verbose=False, memory_cache_size=None, local_cache_size=0, fetch_window=None,
         **storage_options) -> "Dataset":
    """Open an existing dataset at the head of ``branch`` or at ``commit``. ``creds``: deeplake's
    credentials dict for s3:// (aws_access_key_id, aws_secret_access_key, aws_session_token,
    endpoint_url, aws_region, profile_name) or a GCS token; further keyword arguments go to fsspec,
    and deeplake's lock/account arguments (token, access_method, ...) are accepted and have no
    effect. As in deeplake, ``memory_cache_size`` (MB, default 256 here) bounds the in-memory chunk
    cache and ``local_cache_size`` (MB, default 0: off) the on-disk cache of a remote dataset's
    chunks (storage/cache.py). ``fetch_window``: the loader's chunk requests in flight (default:
    sized from the link's latency and bandwidth, or $DEEPLAKE_LOADER_FETCH_WINDOW; 1 = one at a
    time); ``retries``: tries of one remote read (default 6, or $DEEPLAKE_LOADER_RETRIES)."""
    from .format.chunk_lru import DEFAULT_MB, ChunkLRU
    from .limits import check_window

    lru = ChunkLRU(DEFAULT_MB if memory_cache_size is None else memory_cache_size)
    fetch_window = check_window(fetch_window)
    storage = storage_for(path, creds=creds, local_cache_size=local_cache_size, **storage_options)
    # one round trip on a remote store: both files say whether a dataset is there, and the
    # dataset's meta (at the first commit's place) is what an epoch reads first
    got = storage.get_many([VC_KEY, DATASET_META])
    if got.get(VC_KEY) is None and got.get(DATASET_META) is None:
        raise DatasetNotFoundError(str(path))
    vs = VersionState(storage, branch=branch, commit=commit, raw=got.get(VC_KEY))
    ds = Dataset(storage, str(path), vs, read_only=bool(read_only),
                 _shared=_shared_state(lru=lru, fetch_window=fetch_window))
    if vs.key(DATASET_META) == DATASET_META and got.get(DATASET_META) is not None:
        try:
            ds._shared["meta"] = _checked_meta(loads(got[DATASET_META], key=DATASET_META), DATASET_META)
        except DeepLakeLoaderError:  # raised where the meta is first used, as when it is read then
            pass
    return ds


def _checked_meta(meta, key: str) -> dict:
    """dataset_meta.json's object, its fields' types checked (CorruptDatasetError naming the field)."""
    from .errors import CorruptDatasetError

    if not isinstance(meta, dict):
        raise CorruptDatasetError(f"expected a JSON object, found {type(meta).__name__}", key=key)
    for field, kind in (("tensors", list), ("hidden_tensors", list), ("groups", list)):
        if not isinstance(meta.get(field, []), kind):
            raise CorruptDatasetError(f"field {field!r} is not a {kind.__name__}", key=key)
    names = meta.get("tensor_names")
    if names is not None and not (isinstance(names, dict) and all(isinstance(v, str) for v in names.values())):
        raise CorruptDatasetError(f"field 'tensor_names' is {names!r}, not an object of tensor keys", key=key)
    return meta


def _shared_state(**extra) -> dict:
    """State shared by every view/group of one opened dataset."""
    from .format.chunk_lru import ChunkLRU

    state = {"readers": {}, "writer": None, "meta": None, "info": None, "depth": 0, "lru": None, "fetch_window": None}
    state.update(extra)
    if state["lru"] is None:
        state["lru"] = ChunkLRU()
    return state


def empty(path, overwrite: bool = False, **storage_options) -> "Dataset":
    """Create a new empty dataset (DatasetExistsError if one is there, unless overwrite=True)."""
    from .format.writer import create_dataset

    storage = storage_for(path, **storage_options)
    if _exists(storage):
        if not overwrite:
            raise DatasetExistsError(f"A dataset already exists at '{path}'; pass overwrite=True to replace it")
        storage.clear()
    create_dataset(storage)
    return load(path, **storage_options)


def dataset(path, read_only=None, overwrite: bool = False, **storage_options) -> "Dataset":
    """Load the dataset at path, or create an empty one there."""
    if exists(path, **storage_options) and not overwrite:
        return load(path, read_only=read_only, **storage_options)
    return empty(path, overwrite=overwrite, **storage_options)


class Info(dict):
    """A dict with attribute access (``tensor.info.class_names``); updates are written back."""

    def __init__(self, data, on_change=None):
        super().__init__(data)
        self._on_change = on_change

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def update(self, *args, **kwargs):
        super().update(*args, **kwargs)
        if self._on_change is not None:
            self._on_change(dict(self))

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        if self._on_change is not None:
            self._on_change(dict(self))


def _compose(rows, index, length):
    """Apply an int / slice / list index to a view's rows. Returns (rows ndarray, scalar?)."""
    base = np.arange(length, dtype=np.int64) if rows is None else rows
    if isinstance(index, (int, np.integer)):
        i = int(index)
        if i < 0:
            i += len(base)
        if not 0 <= i < len(base):
            raise IndexError(f"index {int(index)} is out of range for length {len(base)}")
        return base[i:i + 1], True
    if isinstance(index, slice):
        return base[index], False
    if isinstance(index, tuple) and len(index) == 1:
        return _compose(rows, index[0], length)
    arr = np.asarray(index)
    if arr.size == 0 and arr.dtype.kind == "f":  # ds[[]]: an empty view
        arr = arr.astype(np.int64)
    if arr.dtype == bool:
        if len(arr) != len(base):
            raise IndexError(f"boolean index of length {len(arr)} for length {len(base)}")
        return base[arr], False
    if arr.dtype.kind not in "iu":
        raise TypeError(f"cannot index with {index!r}")
    arr = arr.astype(np.int64).reshape(-1)
    bad = arr[(arr < -len(base)) | (arr >= len(base))]
    if len(bad):
        raise IndexError(f"index {int(bad[0])} is out of range for length {len(base)}")
    return base[arr], False


class Dataset:
    """A Deep Lake 3 dataset (or a view / group of one)."""

    def __init__(self, storage, path, version_state, *, read_only=False, index_rows=None, scalar=False,
                 group="", _shared=None):
        self.storage, self.path, self.version_state = storage, path, version_state
        self.read_only = read_only
        self.index_rows, self._scalar, self._group = index_rows, scalar, group
        self._shared = _shared if _shared is not None else _shared_state()

    # ------------------------------------------------------------------------------- structure
    @property
    def meta(self) -> dict:
        if self._shared["meta"] is None:
            key = self.version_state.key(DATASET_META)
            self._shared["meta"] = _checked_meta(read_json(self.storage, key), key)
        return self._shared["meta"]

    def _names(self) -> dict:
        """Every tensor name (hidden included) → key."""
        meta = self.meta
        return meta.get("tensor_names") or {k: k for k in meta.get("tensors", [])}

    def _full(self, name: str) -> str:
        return f"{self._group}/{name}" if self._group else name

    def _visible_full(self) -> list:
        hidden = set(self.meta.get("hidden_tensors", []))
        names = self._names()
        prefix = self._group + "/" if self._group else ""
        # deeplake lists tensors in the order of tensor_names (sorted on disk), not creation order
        return [n for n, k in names.items() if k not in hidden and n.startswith(prefix)]

    @property
    def tensors(self) -> dict:
        prefix = len(self._group) + 1 if self._group else 0
        return {n[prefix:]: Tensor(self, n) for n in self._visible_full()}

    @property
    def groups(self) -> dict:
        prefix = self._group + "/" if self._group else ""
        out = {}
        for g in self.meta.get("groups", []):
            if g.startswith(prefix) and "/" not in g[len(prefix):]:
                out[g[len(prefix):]] = self._with(group=g)
        return out

    @property
    def branch(self) -> str:
        return self.version_state.branch

    @property
    def commit_id(self):
        """As deeplake: the last commit (the parent of a branch head; the commit itself when the
        dataset is checked out at one); None before the first commit."""
        vs = self.version_state
        if not vs.is_head_of_branch:
            return vs.head
        return vs.chain[1] if len(vs.chain) > 1 else None

    @property
    def pending_commit_id(self) -> str:
        """The id the next commit will get: the head node of the branch (deeplake's name)."""
        return self.version_state.head

    @property
    def branches(self) -> list:
        return list(self.version_state.info["branches"])

    @property
    def commits(self) -> list:
        """The commits leading to the checked-out state, newest first, as deeplake lists them:
        ``{"commit", "author", "time", "message"}``."""
        import datetime

        out = []
        for cid in self.version_state.chain:
            node = self.version_state.info["commits"][cid]
            t = node.get("commit_time")
            if t is None:  # a branch head: not a commit yet
                continue
            out.append({"commit": cid, "author": node.get("commit_user_name"),
                        "time": datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S"),
                        "message": node.get("commit_message")})
        return out

    def __getstate__(self):
        """Pickled (e.g. for worker processes) without this process's caches: readers, with their
        loaded chunks, are made again where the copy is used."""
        state = dict(self.__dict__)
        lru = self._shared.get("lru")
        state["_shared"] = {**self._shared, "readers": {}, "writer": None, "links": None, "lru": None,
                            "lru_mb": None if lru is None else lru.limit / 1e6}
        return state

    def __setstate__(self, state):
        from .format.chunk_lru import ChunkLRU

        shared = state["_shared"]
        mb = shared.pop("lru_mb", None)
        shared["lru"] = ChunkLRU() if mb is None else ChunkLRU(mb)  # an empty cache of the same size
        self.__dict__.update(state)

    def _reader(self, name: str) -> TensorReader:
        """The reader of tensor ``name`` (relative to this group), cached per opened dataset."""
        self._flush_pending()
        full = self._full(name)
        readers = self._shared["readers"]
        if full not in readers:
            names = self._names()
            if full not in names:
                raise TensorDoesNotExistError(name, list(self.tensors))
            readers[full] = TensorReader(self.storage, self.version_state, full, names[full],
                                         lru=self._shared["lru"], links=self._links())
        return readers[full]

    def _open_readers(self, names) -> None:
        """Open the readers of tensors ``names`` (relative to this group) that are not open yet, at
        once: on a remote store their metadata reads, and the listings of their chunk folders,
        overlap (a round trip or two in all instead of two per tensor, before an epoch's first
        batch). Errors are those of ``_reader``."""
        all_names = self._names()
        readers = self._shared["readers"]
        todo = [f for f in dict.fromkeys(self._full(n) for n in names) if f not in readers and f in all_names]
        if len(todo) < 2 or not self.storage.prefers_ranges:
            return
        self._flush_pending()
        lru, links = self._shared["lru"], self._links()
        listing = getattr(self.storage, "listing", None)  # a folder's sizes, for the fetch window
        # with no commit yet, every chunk is in <tensor>/chunks: listed alongside the metadata
        known = self.version_state.chain[0] == FIRST_COMMIT_ID and listing is not None

        def open_one(full):
            r = TensorReader(self.storage, self.version_state, full, all_names[full], lru=lru, links=links)
            if len(r.enc.table) and not known:
                r.chunk_size(r.enc.name(r.enc.table[0, 0]))  # lists the folder its chunks are in
            return r

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(16, 2 * len(todo)), thread_name_prefix="deeplake_loader-open") as ex:
            lists = [ex.submit(listing, f"{all_names[f]}/chunks") for f in todo] if known else []
            opened = list(ex.map(open_one, todo))
            for f in lists:
                f.result()
        for full, r in zip(todo, opened):
            readers.setdefault(full, r)

    def _enable_local_cache(self, size_mb=None) -> bool:
        """Turn on the on-disk chunk cache of a remote dataset (the hook behind
        ``ds.pytorch(use_local_cache=True)``): ``size_mb`` MB, else the dataset's
        ``local_cache_size`` if it has one, else storage.cache.USE_LOCAL_CACHE_MB. False (nothing
        to do) for local and in-memory datasets."""
        from .storage.cache import USE_LOCAL_CACHE_MB, CachingProvider

        if not isinstance(self.storage, CachingProvider):
            return False
        if size_mb is None:
            size_mb = USE_LOCAL_CACHE_MB if self.storage.cache is None else self.storage.cache.limit / 1e6
        self.storage.enable(size_mb)
        return True

    def _links(self):
        if self._shared.get("links") is None:
            from .format.links import Links

            self._shared["links"] = Links(self.storage)
        return self._shared["links"]

    def get_creds_keys(self) -> list:
        """The creds keys link tensors of this dataset refer to (deeplake's linked_creds.json)."""
        return list(self._links().creds_keys)

    def populate_creds(self, creds_key: str, creds) -> None:
        """Credentials for the linked files stored under ``creds_key`` (as in deeplake: an s3 creds
        dict such as ``{"aws_access_key_id": ..., "aws_secret_access_key": ..., "endpoint_url": ...}``,
        or a GCS token). Kept in memory only."""
        self._links().populate(creds_key, creds)

    def _with(self, **changes) -> "Dataset":
        kw = dict(read_only=self.read_only, index_rows=self.index_rows, scalar=self._scalar,
                  group=self._group, _shared=self._shared)
        kw.update(changes)
        return Dataset(self.storage, self.path, self.version_state, **kw)

    # --------------------------------------------------------------------------------- indexing
    def _base_len(self) -> int:
        lengths = [len(self._reader(n[len(self._group) + 1:] if self._group else n))
                   for n in self._visible_full()]
        return min(lengths) if lengths else 0

    def __len__(self) -> int:
        return self._base_len() if self.index_rows is None else len(self.index_rows)

    def __getitem__(self, item):
        if isinstance(item, str):
            full = self._full(item)
            if full in self._names():
                return Tensor(self, full)
            if full in self.meta.get("groups", []):
                return self._with(group=full)
            raise TensorDoesNotExistError(item, list(self.tensors))
        rows, scalar = _compose(self.index_rows, item, self._base_len() if self.index_rows is None else 0)
        return self._with(index_rows=rows, scalar=scalar)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except TensorDoesNotExistError:
            raise AttributeError(f"'{type(self).__name__}' has no attribute or tensor '{name}'") from None

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        mode = "read_only=True, " if self.read_only else ""
        view = "" if self.index_rows is None else f"rows={len(self.index_rows)}, "
        return f"Dataset(path='{self.path}', {mode}{view}tensors={list(self.tensors)})"

    @property
    def info(self) -> Info:
        if self._shared["info"] is None:
            data = read_json(self.storage, self.version_state.key("dataset_info.json"), default={})
            self._shared["info"] = data
        return Info(self._shared["info"], on_change=self._set_info)

    def _set_info(self, data):
        self._shared["info"] = data
        self._writer().set_info(data)
        self._maybe_flush()

    def summary(self):
        """Print a table of the tensors like deeplake's ds.summary()."""
        print(self._summary_text())

    def _summary_text(self) -> str:
        """deeplake 3's layout: the dataset line, then a table whose cells are centred in columns
        two wider than their widest tensor cell (at least 7); shapes are intervals (``(N, 4:7, 3)``)."""
        rows = [["tensor", "htype", "shape", "dtype", "compression"], ["-------"] * 5]
        for name, t in self.tensors.items():
            dtype = t.dtype
            rows.append([name, t.htype, t.shape_interval, "None" if dtype is None else dtype.name,
                         str(t.meta.sample_compression)])
        # as deeplake: widths come from the tensor rows only; a longer header cell is not padded
        widths = [max([7] + [len(r[i]) for r in rows[2:]]) + 2 for i in range(5)]
        table = ""
        for r in rows:
            table += "\n" + "".join(" " * ((w - len(c)) // 2) + c + " " * (w - len(c) - (w - len(c)) // 2)
                                    for c, w in zip(r, widths))
        return f"{self}\n{table}"

    # ---------------------------------------------------------------------------------- writing
    def _writer(self):
        if self.read_only:
            raise ReadOnlyError(f"dataset '{self.path}' was opened read-only")
        if self.index_rows is not None:
            raise ReadOnlyError("cannot write through a view (ds[...]); write to the dataset itself")
        if not self.version_state.is_head_of_branch:  # deeplake's auto_checkout: a new branch here
            auto = f"auto_{secrets.token_hex(20)}"
            log.info("Automatically checking out to branch '%s' as not currently at the head node of branch '%s'.",
                     auto, self.version_state.branch)
            self.checkout(auto, create=True)
        if self._shared["writer"] is None:
            from .format.writer import DatasetWriter

            self._shared["writer"] = DatasetWriter(self.storage, self.version_state)
        return self._shared["writer"]

    def _flush_pending(self):
        writer = self._shared["writer"]
        if writer is not None and writer.dirty:
            self._apply(writer.flush())

    def _apply(self, changed):
        """Forget cached reader state of tensors a flush changed."""
        self._shared["meta"] = None
        for name in changed:
            self._shared["readers"].pop(name, None)
        if changed:
            self._shared["lru"].clear()  # a flush may have rewritten a tail chunk
        self.version_state.forget_chunk_sets()

    def _maybe_flush(self):
        if self._shared["depth"] == 0:
            self.flush()

    def create_tensor(self, name, htype="generic", dtype=None, sample_compression=UNSPECIFIED, chunk_compression=None,
                      hidden=False, exist_ok=False, verbose=True, **kwargs) -> "Tensor":
        """A new tensor (deeplake's arguments; ``verbose`` has no effect). ``htype`` may be
        ``sequence[X]``, ``link[X]``; video, audio, point_cloud, nifti and mesh tensors need
        ``sample_compression`` named (None: raw arrays), as in deeplake; dicom defaults to "dcm".
        With ``exist_ok=True`` an existing tensor of that name is returned unchanged when the call
        asks for what it is (format/htypes.config_difference; a compression left unspecified is
        None there, as deeplake compares it), else ValueError showing both configurations."""
        from .format.htypes import config_difference

        full = self._full(name)
        if full in self._names():
            if not exist_ok:
                raise TensorAlreadyExistsError(name)
            meta = self._reader(name).meta
            asked = None if sample_compression is UNSPECIFIED else sample_compression  # as deeplake compares it
            difference = config_difference(meta, htype, dtype, asked, chunk_compression, hidden)
            if difference is not None:
                raise ValueError(f"Tensor {name} already exists with different configuration. Current config: "
                                 f"{difference[0]}. New config: {difference[1]}")
            return Tensor(self, full)
        if full in self.meta.get("groups", []):
            raise TensorGroupAlreadyExistsError(name)
        if full.rpartition("/")[2] in dir(self):
            raise InvalidTensorNameError(f"The use of a reserved attribute '{full.rpartition('/')[2]}' as a tensor "
                                         "name is invalid.")
        kw = dict(kwargs, hidden=True) if hidden else kwargs
        self._writer().create_tensor(full, htype=htype, dtype=dtype, sample_compression=sample_compression,
                                     chunk_compression=chunk_compression, **kw)
        self._apply([full])
        return Tensor(self, full)

    def create_group(self, name: str, exist_ok: bool = False) -> "Dataset":
        """A group of tensors (``ds.create_group("a/b")`` makes ``a`` and ``a/b``); its tensors are
        ``group.create_tensor(...)`` or ``ds.create_tensor("a/b/x")``. An existing group:
        TensorGroupAlreadyExistsError, or the group itself with ``exist_ok=True``."""
        full = self._full(name)
        if full in self.meta.get("groups", []):
            if not exist_ok:
                raise TensorGroupAlreadyExistsError(name)
            return self._with(group=full)
        if not name or full.rpartition("/")[2] in dir(self):
            raise InvalidTensorGroupNameError(f"The use of a reserved attribute '{full.rpartition('/')[2]}' as a "
                                              "tensor group name is invalid." if name else "invalid group name ''")
        self._writer().create_group(full)
        self._apply([])
        return self._with(group=full)

    def checkout(self, address: str, create: bool = False, reset: bool = False):
        """Move to the head of branch ``address`` or to commit ``address``; ``create=True`` makes
        a new branch there from the current state (a branch head with changes is committed first,
        deeplake's "auto commit before checkout to ..."; one without changes branches off its last
        commit). Every view and group of this dataset follows. Returns ``commit_id``. Unknown
        address: CheckoutError. ``reset`` is accepted (deeplake's recovery of a damaged head)."""
        from .format import writer as W

        if self.index_rows is not None:
            raise CheckoutError("Cannot perform version control operations on a filtered dataset view.")
        if create and self.read_only:
            raise ReadOnlyError(f"dataset '{self.path}' was opened read-only: cannot create branch '{address}'")
        self.flush()
        vs = self.version_state
        if address in vs.info["branches"]:
            if create:
                raise CheckoutError(f"Can't create new branch, '{address}' already exists.")
            vs.move(branch=address)
        elif address in vs.info["commits"]:
            if create:
                raise CheckoutError(f"Can't create new branch, commit '{address}' already exists.")
            vs.move(commit=address)
        elif create:
            original = vs.head
            if vs.is_head_of_branch:
                if W.head_has_changes(self.storage, vs):
                    self._writer().commit(f"auto commit before checkout to {address}")
                vs.move(commit=original if vs.head != original else vs.chain[1])
            W.create_branch(self.storage, vs, address, source=original)
        else:
            raise CheckoutError(f"Address {address} not found. If you want to create a new branch, use checkout "
                                "with create=True")
        self._forget_version()
        return self.commit_id

    def _forget_version(self):
        """After the version state moved: nothing read at the old commit is reused."""
        self._shared.update(writer=None, meta=None, info=None, links=None)
        self._shared["readers"].clear()
        self._shared["lru"].clear()

    def extend(self, samples: dict):
        """Append many rows: {tensor name: list of samples}. Every sample of every tensor is checked
        before anything is written; a failure leaves the dataset as it was."""
        if not isinstance(samples, dict):
            raise TypeError("ds.extend() takes a dict of {tensor name: list of samples}")
        names = self._names()
        columns = {}
        for name, values in samples.items():
            full = self._full(name)
            if full not in names:
                raise TensorDoesNotExistError(name, list(self.tensors))
            columns[full] = list(values)
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"ds.extend() got columns of different lengths: "
                             f"{ {k: len(v) for k, v in columns.items()} }")
        self._writer().extend(columns)
        self._maybe_flush()

    def append(self, sample: dict):
        self.extend({k: [v] for k, v in sample.items()})

    def flush(self):
        writer = self._shared["writer"]
        if writer is not None:
            self._apply(writer.flush())

    def commit(self, message: str | None = None, allow_empty: bool = False) -> str:
        """Freeze the branch head as a commit and return its id (a new head follows it).
        ``allow_empty`` is accepted: an empty commit is made either way."""
        self.flush()
        commit_id = self._writer().commit(message)
        self._forget_version()
        return commit_id

    def __enter__(self):
        self._shared["depth"] += 1
        return self

    def __exit__(self, *exc):
        self._shared["depth"] -= 1
        if self._shared["depth"] == 0:
            self.flush()

    # ---------------------------------------------------------------------------- consumers
    def query(self, text: str) -> "Dataset":
        """A view of the rows a query selects (see docs/TQL.md)."""
        from .tql import query_rows

        return self[query_rows(self, text).rows.tolist()]

    def dataloader(self, ignore_errors: bool = False, verbose: bool = False):
        """The ``ds.dataloader()`` chain (dataloader.py); ``ignore_errors`` / ``verbose`` as
        deeplake's (skipped samples in ``loader.summary``)."""
        from .dataloader import dataloader

        return dataloader(self, ignore_errors=ignore_errors, verbose=verbose)

    # Deep Lake 3's older entry points, ds.pytorch(...) and ds.tensorflow(...), with its signatures
    pytorch = oss_loaders.pytorch
    tensorflow = oss_loaders.tensorflow


class Tensor:
    """A tensor of a dataset or of a view of one."""

    def __init__(self, ds: Dataset, full_name: str, rows=None, scalar=None, sub=()):
        self.ds, self.key_name = ds, full_name
        self.index_rows = ds.index_rows if rows is None else rows
        self._scalar = ds._scalar if scalar is None else scalar
        self._sub = tuple(sub)  # index within each sample (t[i, 10:20]: frames 10..19 of a video)

    @property
    def reader(self) -> TensorReader:
        return self.ds._with(group="")._reader(self.key_name)

    @property
    def name(self) -> str:
        return self.key_name

    @property
    def meta(self):
        return _Meta(self.reader)

    @property
    def htype(self) -> str:
        return self.reader.htype

    @property
    def dtype(self):
        return self.reader.dtype

    @property
    def info(self) -> Info:
        return Info(self.reader.info, on_change=self._set_info)

    def _set_info(self, data):
        self.ds._writer().set_tensor_info(self.key_name, data)
        self.ds._maybe_flush()

    @property
    def base_htype(self):
        return self.reader.base_htype

    def _rows(self) -> np.ndarray:
        return np.arange(len(self.reader), dtype=np.int64) if self.index_rows is None else self.index_rows

    def __len__(self) -> int:
        return len(self.reader) if self.index_rows is None else len(self.index_rows)

    def __getitem__(self, item):
        sub = ()
        if isinstance(item, tuple) and len(item) > 1:
            if self._sub:
                raise IndexError("a tensor indexed within its samples cannot be indexed again")
            item, sub = item[0], item[1:]
        rows, scalar = _compose(self.index_rows, item, len(self.reader) if self.index_rows is None else 0)
        if sub and self.reader.base_htype == "video":
            from .format.media.video import selection

            selection(sub[0], 1 << 30)  # deeplake's refusals of a frame index (a list, another type)
        return Tensor(self.ds, self.key_name, rows, scalar, sub)

    @property
    def shape(self) -> tuple:
        r = self.reader
        if self._sub:
            shapes = {_sub_shape(r.shape_of(int(row)), self._sub) for row in self._rows()}
            if self._scalar:
                return shapes.pop()
            first = shapes.pop() if len(shapes) == 1 else None
            return (len(self),) + (first if first is not None else ())
        if self._scalar:
            return r.shape_of(int(self.index_rows[0]))
        lo, hi = r.min_shape, r.max_shape
        dims = tuple(a if a == b else None for a, b in zip(lo, hi))
        if r.seq is not None:
            dims = (None,) + dims
        return (len(self),) + dims

    @property
    def shape_interval(self) -> str:
        """deeplake's str(tensor.shape_interval): ``(N, 4:7, 3)`` from the meta's shape bounds."""
        r = self.reader
        dims = [str(a) if a == b else f"{a}:{b}" for a, b in zip(r.min_shape, r.max_shape)]
        if r.seq is not None:  # sequence lengths, from the sequence index
            n = r.seq.table[:, 0]
            lo, hi = (int(n.min()), int(n.max())) if len(n) else (0, 0)
            dims = [str(lo) if lo == hi else f"{lo}:{hi}"] + dims
        return "(" + ", ".join([str(len(self))] + dims) + ")"

    def _values(self):
        """Every row's decoded sample, sub-indexed within the sample when the tensor was
        (video frames are then the only ones decoded)."""
        r = self.reader
        rows = self._rows()
        if not self._sub:
            return r.column(rows)  # chunk by chunk; an (N, *shape) array when every sample has one shape
        out = []
        for row in rows.tolist():
            if r.base_htype == "video" and r.seq is None:
                value = r.read(row, frames=self._sub[0])
                rest = self._sub[1:] if isinstance(self._sub[0], (int, np.integer)) else (slice(None),) + self._sub[1:]
            else:
                value, rest = r.read(row), self._sub
            out.append(_index_value(value, rest, self.key_name))
        return out

    def numpy(self, aslist: bool = False):
        r = self.reader
        values = self._values()
        if r.htype == "point_cloud":  # deeplake shows a point cloud's first three columns (not of links)
            values = [v[..., :3] for v in values] if not isinstance(values, np.ndarray) else values[..., :3]
        if isinstance(values, np.ndarray):
            if self._scalar:
                return values[0]
            return list(values) if aslist else values
        if r.base_htype == "polygon":  # a list of (points, ndim) arrays per sample, always
            return values[0] if self._scalar else values
        if r.is_text:
            values = [numpy_form(r.base_htype, v) for v in values]
        elif r.seq is not None and not aslist:
            for v in values:
                if len({x.shape for x in v}) > 1:
                    raise DeepLakeLoaderError(f"tensor '{self.key_name}' has a sequence of items of different shapes "
                                              f"({sorted({x.shape for x in v})[:3]}): use numpy(aslist=True)")
            values = [np.stack(v) if v else np.zeros((0,), r.dtype) for v in values]
        if self._scalar:
            return values[0]
        if aslist:
            return values
        if not values:
            return np.zeros((0,), r.dtype if r.dtype is not None and r.dtype != object else np.float64)
        shapes = {v.shape for v in values}
        if len(shapes) > 1:
            raise DynamicTensorNumpyError(f"tensor '{self.key_name}' has samples of different shapes "
                                          f"({sorted(shapes)[:3]}...): use numpy(aslist=True)")
        return np.stack(values)

    def data(self):
        """deeplake's data(): {"value": ...}, plus "text" for class labels when the tensor has class
        names (a label with no name gives None, as in deeplake), and "sample_info" for images."""
        r = self.reader
        rows = self._rows()
        if r.htype == "video":  # link[video]: {"value": frames}, as deeplake
            return self._video_data()
        forms = data_column(r, self._info_reader(), self._values(), rows)
        if self._scalar:
            return dict(forms[0])
        out = {"value": [f["value"] for f in forms]}
        for key in ("text", "sample_info"):
            if forms and key in forms[0]:
                out[key] = [f[key] for f in forms]
        return out

    def _video_data(self) -> dict:
        """deeplake's data() of video samples: frames, the frames' presentation times (seconds,
        float32) and the sample info."""
        from .format.media.video import timestamps

        r = self.reader
        rows = self._rows()
        frames = self._values()
        bufs = r.stored_bytes(rows)
        sel = self._sub[0] if self._sub else None
        stamps = [timestamps(b, r.shape_of(int(row)), sel) for b, row in zip(bufs, rows.tolist())]
        infos = self.sample_info
        if self._scalar:
            return {"frames": frames[0], "timestamps": stamps[0], "sample_info": infos}
        try:
            frames = np.stack(frames)
        except ValueError:
            pass
        try:
            stamps = np.array(stamps)
        except ValueError:
            stamps = np.array(stamps, dtype=object)
        return {"frames": frames, "timestamps": stamps, "sample_info": infos}

    @property
    def timestamps(self) -> np.ndarray:
        """Presentation times in seconds (float32) of the frames of one video sample (the frames
        ``t[i, a:b]`` selects)."""
        if self.reader.base_htype != "video":
            raise Exception("Only supported for video tensors.")
        if not self._scalar:
            raise ValueError("Only supported for exactly 1 video sample.")
        return self._video_data()["timestamps"]

    @property
    def sample_info(self):
        """The per-sample info deeplake keeps for images and media (``{}`` where there is none);
        a list for several rows."""
        rows = self._rows()
        reader = self._info_reader()
        infos = [{} for _ in rows]
        if reader is not None:
            n = len(reader)
            got = reader.read_many([int(x) for x in rows if x < n]) if n else []
            it = iter(got)
            infos = [next(it) if x < n else {} for x in rows]
        return infos[0] if self._scalar else infos

    def _info_reader(self):
        """Reader of the hidden sample-info tensor of an image tensor (None if it has none)."""
        key = info_tensor_key(self.reader.meta)
        if key is None:
            return None
        try:
            return self.ds._with(group="")._reader(key)
        except TensorDoesNotExistError:
            return None

    def text(self):
        return self.data().get("text")

    def tobytes(self) -> bytes:
        if not self._scalar:
            raise DeepLakeLoaderError("tobytes() needs a single sample: tensor[i].tobytes()")
        return bytes(self.reader.stored_bytes([int(self.index_rows[0])])[0])

    def extend(self, samples):
        if self.index_rows is not None:
            raise ReadOnlyError("cannot write through a view (tensor[...]); write to the tensor itself")
        self.ds._writer().extend({self.key_name: list(samples)})
        self.ds._maybe_flush()

    def append(self, sample):
        self.extend([sample])

    def __repr__(self):
        return f"Tensor(key='{self.key_name}', htype='{self.htype}', length={len(self)})"


def _index_value(value, sub, name):
    """``value[sub]`` for one decoded sample (numpy's rules); lists (polygons, sequences) by their
    first index only."""
    if not sub:
        return value
    if isinstance(value, list):
        if len(sub) > 1:
            raise IndexError(f"tensor '{name}': samples that are lists take one index within them, got {sub}")
        return value[sub[0]]
    return value[sub]


def _sub_shape(shape, sub) -> tuple:
    """The shape of a sample of ``shape`` indexed by ``sub`` (without decoding it)."""
    return np.broadcast_to(np.zeros((), np.uint8), tuple(shape))[sub].shape


class _Meta:
    """tensor.meta: attribute access to tensor_meta.json fields."""

    def __init__(self, reader):
        self._meta = reader.meta

    def __getattr__(self, name):
        try:
            return self._meta[name]
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self):
        return dict(self._meta)


__all__ = ["Dataset", "Tensor", "load", "empty", "dataset", "exists", "FIRST_COMMIT_ID"]
