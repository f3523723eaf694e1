"""storage_for(path): the provider that serves a dataset path or URL."""

from __future__ import annotations

from deeplake_loader.errors import HubPathError
from deeplake_loader.storage.base import StorageProvider
from deeplake_loader.storage.local import LocalProvider
from deeplake_loader.storage.memory import MemoryProvider

__all__ = ["StorageProvider", "LocalProvider", "MemoryProvider", "storage_for"]


# Keyword arguments of deeplake 3's load()/dataset()/empty() that tune its own locks, account or
# logging. Training scripts pass them; here they have nothing to act on. (memory_cache_size is
# the dataset's chunk LRU, local_cache_size the on-disk chunk cache: storage.cache.)
DEEPLAKE_ONLY = frozenset({"token", "org_id", "memory_cache_size", "access_method",
                           "unlink", "reset", "check_integrity", "lock_timeout", "lock_enabled",
                           "index_params", "verbose", "public", "runtime"})

# deeplake's s3 creds dict -> s3fs options (top level / client_kwargs).
_S3_CREDS = {"aws_access_key_id": "key", "aws_secret_access_key": "secret",
             "aws_session_token": "token", "profile_name": "profile"}
_S3_CLIENT = {"endpoint_url": "endpoint_url", "aws_region": "region_name"}


def options_from_creds(path: str, creds) -> dict:
    """fsspec options for deeplake's ``creds`` argument: its s3 keys (aws_access_key_id,
    aws_secret_access_key, aws_session_token, endpoint_url, aws_region, profile_name) or a GCS
    token. ``None``, ``{}`` and ``"ENV"`` mean the environment's own credentials."""
    if creds is None or creds == "ENV" or (isinstance(creds, dict) and not creds):
        return {}
    scheme = path.split("://", 1)[0] if "://" in path else ""
    if scheme in ("gcs", "gs"):
        return {"token": creds}
    if not isinstance(creds, dict):
        raise ValueError(f"creds must be a dict of credentials or 'ENV', not {type(creds).__name__}")
    if scheme != "s3":
        return {}  # deeplake ignores creds for local and in-memory paths too
    unknown = sorted(set(creds) - set(_S3_CREDS) - set(_S3_CLIENT))
    if unknown:
        raise ValueError(f"creds for '{path}' has unknown keys {unknown}; s3 creds take "
                         f"{sorted(list(_S3_CREDS) + list(_S3_CLIENT))}")
    opts = {_S3_CREDS[k]: v for k, v in creds.items() if k in _S3_CREDS and v is not None}
    client = {_S3_CLIENT[k]: v for k, v in creds.items() if k in _S3_CLIENT and v is not None}
    if client:
        opts["client_kwargs"] = client
    return opts


def storage_for(path, creds=None, local_cache_size=0, **storage_options) -> StorageProvider:
    """Pick a provider by the path's scheme: mem://, hub://, fsspec URLs, or a local directory.
    ``creds`` is deeplake's credentials argument; ``local_cache_size`` (MB) turns on the on-disk
    chunk cache of a remote dataset (storage.cache); ``retries`` is the number of tries of one
    remote read (storage.retry); other keyword arguments go to fsspec (explicit ones win over those
    derived from creds), except deeplake's own knobs (DEEPLAKE_ONLY)."""
    if isinstance(path, StorageProvider):
        return path
    path = str(path)
    storage_options = {**options_from_creds(path, creds),
                       **{k: v for k, v in storage_options.items()
                          if k not in DEEPLAKE_ONLY and k != "fetch_window"}}  # that one is load()'s
    if path.startswith("hub://"):
        raise HubPathError(
            f"'{path}' is a Deep Lake hub dataset, served by Activeloop's service, which "
            "deeplake_loader does not use. Export it once with deeplake itself, e.g. "
            f"`deeplake.deepcopy('{path}', '/data/my_dataset')` (or ds.copy to s3://...), "
            "then open that local or s3:// path with deeplake_loader."
        )
    if path.startswith("mem://"):
        return MemoryProvider(path)
    if "://" in path and not path.startswith("file://"):
        from deeplake_loader.storage.cache import CachingProvider
        from deeplake_loader.storage.remote import FsspecProvider

        return CachingProvider(FsspecProvider(path, **storage_options), local_cache_size)
    if path.startswith("file://"):
        path = path[len("file://"):]
    return LocalProvider(path)
