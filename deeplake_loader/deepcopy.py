"""``deeplake_loader.deepcopy(src, dest, ...)``: deeplake's ``deeplake.deepcopy``, a copy of a whole
dataset with its version history (every branch and commit), key by key.

As deeplake does it: every stored key of ``src`` (except the lock file) is written under ``dest``;
with ``tensors=[...]`` (tensor or group names) only those tensors' keys are copied, with the
hidden tensors linked to them, and every commit's ``dataset_meta.json`` lists only them (and the
groups holding them). ``src`` is a path (opened with ``src_creds``) or a Dataset (not a view, not
a group: TypeError, deeplake's messages); ``dest`` holding a dataset is a DatasetExistsError (a
DatasetHandlerError) unless ``overwrite=True``. Keys are copied by ``num_workers`` threads (a
remote store's round trips overlap) with a progress bar when ``progressbar``. ``runtime``,
``token``, ``scheduler``, ``public`` and ``verbose`` are accepted: they concern Activeloop's
service or deeplake's own process pools.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from .errors import DatasetExistsError, DatasetNotFoundError
from .format.meta import dumps_meta, loads

LOCK_KEY = "dataset_lock.lock"
DATASET_META = "dataset_meta.json"


def deepcopy(src, dest, runtime=None, tensors=None, overwrite: bool = False, src_creds=None, dest_creds=None,
             token=None, num_workers: int = 0, scheduler: str = "threaded", progressbar: bool = True,
             public: bool = False, verbose: bool = True, **kwargs):
    """Copy the dataset at ``src`` (a path or a Dataset) to ``dest`` with its version history;
    returns the copy opened at the head of main. See the module doc."""
    from .dataset import Dataset, _exists, load
    from .storage import storage_for

    if isinstance(src, Dataset):
        if src.index_rows is not None:
            raise TypeError("Deepcopy is not supported for unmaterialized dataset views, i.e. slices of datasets. "
                            "Please specify a dataset or a materialized dataset view.")
        if src._group:
            raise TypeError("Deepcopy is not supported for individual groups. Please specify a dataset.")
        src.flush()
        source = src
    elif isinstance(src, (str, os.PathLike)):
        source = load(os.fspath(src), read_only=True, creds=src_creds)
    else:
        raise TypeError("The specified ``src`` is not an allowed type. Please specify a dataset or a materialized "
                        "dataset view.")
    dest = os.fspath(dest)
    out = storage_for(dest, creds=dest_creds)
    if _exists(out):
        if not overwrite:
            raise DatasetExistsError(f"A dataset already exists at the given path ({dest}). If you want to copy to a "
                                     "new dataset, either specify another path or use overwrite=True.")
        out.clear()
    keys = [k for k in source.storage.list("") if k != LOCK_KEY]
    if not any(k.rpartition("/")[2] in (DATASET_META, "version_control_info.json") for k in keys):
        raise DatasetNotFoundError(str(getattr(source, "path", src)))
    rewrite = lambda key, data: data  # noqa: E731
    if tensors is not None:
        keys, rewrite = _only(source, [tensors] if isinstance(tensors, str) else list(tensors), keys)

    def copy(key):
        out.put(key, rewrite(key, source.storage.get(key)))

    jobs = keys
    if progressbar:
        from .progress import bar

        jobs = bar(keys, len(keys), "Copying dataset", unit="key")
    if num_workers > 1:
        with ThreadPoolExecutor(int(num_workers), thread_name_prefix="deeplake_loader-deepcopy") as pool:
            for _ in pool.map(copy, jobs):
                pass
    else:
        for key in jobs:
            copy(key)
    return load(dest, creds=dest_creds)


def _only(source, wanted, keys):
    """(keys of the wanted tensors and of everything that is not a tensor's, a function rewriting
    each commit's dataset_meta.json to list only them)."""
    names = source._names()  # every tensor name (hidden ones too) -> key
    chosen = []
    for name in wanted:
        if name in names:
            chosen.append(name)
        elif name in source.meta.get("groups", []):
            chosen.extend(n for n in names if n.startswith(name + "/"))
        else:
            source[name]  # raises TensorDoesNotExistError naming the tensors there are
    by_key = {k: n for n, k in names.items()}
    for name in list(chosen):  # the hidden tensors kept in step with them (_x_id, _x_shape, _x_info)
        chosen.extend(by_key[k] for k in (source._reader(name).meta.get("links") or {}) if k in by_key)
    keep = {names[n] for n in chosen}
    drop = [k for k in names.values() if k not in keep]

    def kept(key):
        return not any(key.startswith(t + "/") or f"/{t}/" in key for t in drop)

    def rewrite(key, data):
        if key.rpartition("/")[2] != DATASET_META:
            return data
        meta = loads(data, key=key)
        tensor_names = meta.get("tensor_names") or {t: t for t in meta.get("tensors", [])}
        meta["tensors"] = [t for t in meta.get("tensors", []) if t in keep]
        meta["hidden_tensors"] = [t for t in meta.get("hidden_tensors", []) if t in meta["tensors"]]
        meta["groups"] = [g for g in meta.get("groups", []) if any(w == g or w.startswith(g + "/") for w in wanted)
                          or any(n.startswith(g + "/") for n in chosen)]  # deeplake drops subgroups of a group
        meta["tensor_names"] = {n: k for n, k in tensor_names.items() if k in meta["tensors"]}
        return dumps_meta(meta)

    return [k for k in keys if kept(k)], rewrite


__all__ = ["deepcopy"]
