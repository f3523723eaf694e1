"""storage_for(path): the provider that serves a dataset path or URL."""

from __future__ import annotations

from deeplake_loader.errors import HubPathError
from deeplake_loader.storage.base import StorageProvider
from deeplake_loader.storage.local import LocalProvider
from deeplake_loader.storage.memory import MemoryProvider

__all__ = ["StorageProvider", "LocalProvider", "MemoryProvider", "storage_for"]


def storage_for(path, **storage_options) -> StorageProvider:
    """Pick a provider by the path's scheme: mem://, hub://, fsspec URLs, or a local directory."""
    if isinstance(path, StorageProvider):
        return path
    path = str(path)
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
        from deeplake_loader.storage.remote import FsspecProvider

        return FsspecProvider(path, **storage_options)
    if path.startswith("file://"):
        path = path[len("file://"):]
    return LocalProvider(path)
