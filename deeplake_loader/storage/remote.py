"""Any URL fsspec knows (s3://, gcs://, file://, ...), with HTTP range reads for chunks."""

from __future__ import annotations

from typing import Iterator, Optional

from deeplake_loader.storage.base import StorageProvider


class FsspecProvider(StorageProvider):
    prefers_ranges = True

    def __init__(self, url: str, **storage_options):
        try:
            import fsspec
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                f"Reading '{url}' needs fsspec (and s3fs/gcsfs for cloud URLs): "
                "pip install 'deeplake_loader[s3]'"
            ) from e
        self.root = url.rstrip("/")
        self.fs, self._base = fsspec.core.url_to_fs(self.root, **storage_options)
        self._base = self._base.rstrip("/")

    def _path(self, key: str) -> str:
        return f"{self._base}/{key}"

    def get(self, key: str) -> bytes:
        try:
            return self.fs.cat_file(self._path(key))
        except (FileNotFoundError, IsADirectoryError):
            raise KeyError(key) from None

    def get_range(self, key: str, start: int, end: Optional[int]) -> bytes:
        try:
            return self.fs.cat_file(self._path(key), start=start, end=end)
        except (FileNotFoundError, IsADirectoryError):
            raise KeyError(key) from None

    def put(self, key: str, data: bytes) -> None:
        self.fs.pipe_file(self._path(key), bytes(data))

    def delete(self, key: str) -> None:
        try:
            self.fs.rm_file(self._path(key))
        except FileNotFoundError:
            pass

    def exists(self, key: str) -> bool:
        return self.fs.isfile(self._path(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self._path(prefix) if prefix else self._base
        if not self.fs.exists(base):
            return iter([])
        if self.fs.isfile(base):
            return iter([prefix])
        n = len(self._base) + 1
        return iter(p[n:] for p in self.fs.find(base))
