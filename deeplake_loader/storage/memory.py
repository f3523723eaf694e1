"""mem://name: a dataset held in this process's memory (shared by every open of the same name)."""

from __future__ import annotations

import threading
from typing import Dict, Iterator

from deeplake_loader.storage.base import StorageProvider

_STORES: Dict[str, Dict[str, bytes]] = {}
_LOCK = threading.Lock()


class MemoryProvider(StorageProvider):
    def __init__(self, root: str):
        self.root = root
        with _LOCK:
            self._data = _STORES.setdefault(root, {})

    def get(self, key: str) -> bytes:
        return self._data[key]

    def put(self, key: str, data: bytes) -> None:
        self._data[key] = bytes(data)

    def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def exists(self, key: str) -> bool:
        return key in self._data

    def list(self, prefix: str = "") -> Iterator[str]:
        return iter([k for k in list(self._data) if k.startswith(prefix)])
