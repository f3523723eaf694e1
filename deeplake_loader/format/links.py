"""Link tensors (``htype="link[X]"``, spec §10.2): each sample is a path or URL, and the file it
names is fetched when the sample is read.

``Links`` belongs to one opened dataset. It reads the dataset's creds-key registry
(``linked_creds.json``), holds the credentials a script gives with ``ds.populate_creds(key, creds)``
and fetches files: local paths and ``file://`` from disk, every other URL through fsspec (s3 with
the creds of the sample's key, else the dataset's own s3 filesystem, else the environment's).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import CorruptDatasetError, LinkedFileError
from .encoders import locate, split_version
from .meta import read_json

LINKED_CREDS = "linked_creds.json"


def parse_creds_index(buf, *, tensor=None, key=None) -> np.ndarray:
    """Rows of [creds_encoding, last_index] (uint32): encoding 0 = no key, k = creds_keys[k-1]."""
    if not buf:
        return np.zeros((0, 2), np.int64)
    _, o = split_version(buf, tensor=tensor, key=key)
    if (len(buf) - o) % 8:
        raise CorruptDatasetError("creds index is not whole rows of 2 x uint32", tensor=tensor, key=key)
    return np.frombuffer(buf, dtype="<u4", offset=o).reshape(-1, 2).astype(np.int64)


def is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


class Links:
    """Fetches linked files for the link tensors of one dataset."""

    def __init__(self, storage):
        self.storage = storage
        self.creds: dict = {}  # creds key -> deeplake creds dict (populate_creds)
        self._keys = None

    @property
    def creds_keys(self) -> list:
        if self._keys is None:
            reg = read_json(self.storage, LINKED_CREDS, default={})
            keys = reg.get("creds_keys", [])
            if not isinstance(keys, list):
                raise CorruptDatasetError(f"'creds_keys' is {keys!r}, not a list", key=LINKED_CREDS)
            self._keys = [k for k in keys if isinstance(k, str)]
        return self._keys

    def populate(self, key: str, creds) -> None:
        if key not in self.creds_keys:
            raise KeyError(f"creds key '{key}' is not one of this dataset's {self.creds_keys}")
        self.creds[key] = creds

    def key_of(self, table: np.ndarray, item: int, tensor: str):
        """The creds key of a link sample (None for 'no key')."""
        if not len(table):
            return None
        rows, _ = locate(table[:, 1], [item])
        if rows[0] >= len(table):
            return None
        enc = int(table[rows[0], 0])
        if enc == 0:
            return None
        if enc > len(self.creds_keys):
            raise CorruptDatasetError(f"creds index names key #{enc}; linked_creds.json has "
                                      f"{len(self.creds_keys)}", tensor=tensor, index=item, key=LINKED_CREDS)
        return self.creds_keys[enc - 1]

    def _fs(self, url: str, creds_key):
        import fsspec

        from ..storage import options_from_creds

        if creds_key is not None and creds_key in self.creds:
            return fsspec.core.url_to_fs(url, **options_from_creds(url, self.creds[creds_key]))
        fs = getattr(self.storage, "fs", None)
        scheme = url.split("://", 1)[0]
        if fs is not None and scheme in (fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)):
            return fs, fs._strip_protocol(url)
        return fsspec.core.url_to_fs(url)

    def fetch(self, path: str, creds_key=None, *, tensor=None, index=None) -> bytes:
        """The bytes of the linked file; LinkedFileError naming the path, tensor and sample."""
        try:
            if not is_url(path):
                with open(path[len("file://"):] if path.startswith("file://") else path, "rb") as f:
                    return f.read()
            fs, p = self._fs(path, creds_key)
            retry = getattr(self.storage, "retry", None)  # the dataset's retry policy (storage.retry)
            return retry.call(lambda: fs.cat_file(p), path) if retry is not None else fs.cat_file(p)
        except Exception as e:  # noqa: BLE001 - every storage library raises its own types
            hint = ""
            if creds_key is not None and creds_key not in self.creds:
                hint = f"; its creds key '{creds_key}' has no credentials: call ds.populate_creds('{creds_key}', {{...}})"
            raise LinkedFileError(f"linked file '{path}' cannot be read ({type(e).__name__}: {e}){hint}",
                                  path=path, tensor=tensor, index=index) from None

    def fetch_many(self, paths, keys, *, tensor=None, rows=None) -> list:
        """fetch() of several samples; remote ones concurrently (the wait is the network's)."""
        rows = list(rows) if rows is not None else [None] * len(paths)
        jobs = [(p, k, r) for p, k, r in zip(paths, keys, rows)]
        if sum(is_url(p) for p in paths) < 2:
            return [self.fetch(p, k, tensor=tensor, index=r) for p, k, r in jobs]
        with ThreadPoolExecutor(max_workers=min(16, len(jobs))) as ex:
            return list(ex.map(lambda j: self.fetch(j[0], j[1], tensor=tensor, index=j[2]), jobs))
