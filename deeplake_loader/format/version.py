"""Version control state: which commit a dataset is opened at, its ancestor chain, and where each
key lives (spec §1, §8)."""

from __future__ import annotations

import json

from ..errors import CorruptDatasetError, DeepLakeLoaderError
from . import FIRST_COMMIT_ID
from .meta import loads

VC_KEY = "version_control_info.json"
_UNREAD = object()


def prefix(commit: str) -> str:
    """Key prefix of a commit's folder: '' for the FIRST commit, 'versions/<id>/' otherwise."""
    return "" if commit == FIRST_COMMIT_ID else f"versions/{commit}/"


def parse_chunk_set(text: bytes) -> dict:
    """chunk_set file → {chunk name: (commit or None, tensor key or None)} (spec §8.3)."""
    out = {}
    for entry in text.decode("utf-8").split(","):
        entry = entry.strip()
        if not entry:
            continue
        parts = entry.split(":", 2)
        out[parts[0]] = (parts[1] if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None)
    return out


class VersionState:
    """The commit graph of a dataset opened at a branch head or at a commit id."""

    def __init__(self, storage, branch: str = "main", commit: str | None = None, *, raw=_UNREAD):
        """``raw``: the bytes of version_control_info.json (None: there is none) when the caller
        has read them already."""
        self.storage = storage
        if raw is _UNREAD:
            raw = storage.get_or_none(VC_KEY)
        if raw is None:
            self.info = {"commits": {FIRST_COMMIT_ID: {"branch": "main", "parent": None, "children": [],
                                                      "commit_message": None, "commit_time": None,
                                                      "commit_user_name": None, "is_checkpoint": False,
                                                      "total_samples_processed": 0}},
                         "branches": {"main": FIRST_COMMIT_ID}}
        else:
            self.info = loads(raw, key=VC_KEY)
            if not isinstance(self.info, dict):
                raise CorruptDatasetError(f"expected a JSON object, found {type(self.info).__name__}", key=VC_KEY)
            if not isinstance(self.info.get("commits"), dict) or not isinstance(self.info.get("branches"), dict):
                raise CorruptDatasetError("no 'commits'/'branches' objects", key=VC_KEY)
        self._chunk_sets: dict = {}
        self.move(branch=branch, commit=commit)

    def move(self, branch: str = "main", commit: str | None = None) -> None:
        """Re-point this state at the head of ``branch`` or at ``commit`` (its ``info`` kept):
        ``ds.checkout``. Views and writers holding this object follow."""
        commits, branches = self.info["commits"], self.info["branches"]
        if commit is not None:
            if commit not in commits:
                raise DeepLakeLoaderError(f"commit '{commit}' does not exist; commits: {sorted(commits)}")
            head, branch = commit, commits[commit].get("branch", branch)
        else:
            if branch not in branches:
                raise DeepLakeLoaderError(f"branch '{branch}' does not exist; branches: {sorted(branches)}")
            head = branches[branch]
        chain = [head]
        while True:
            node = commits.get(chain[-1])
            if node is None:
                raise CorruptDatasetError(f"commit '{chain[-1]}' is referenced but not described",
                                          key=VC_KEY)
            parent = node.get("parent")
            if parent is None:
                break
            if parent in chain:
                raise CorruptDatasetError("the commit graph has a cycle", key=VC_KEY)
            chain.append(parent)
        self.head, self.branch, self.chain = head, branch, chain
        self._chunk_sets.clear()

    @property
    def is_head_of_branch(self) -> bool:
        return self.info["branches"].get(self.branch) == self.head

    @property
    def prefix(self) -> str:
        return prefix(self.head)

    def key(self, name: str) -> str:
        """A metadata key at the opened commit (metas are complete snapshots per commit)."""
        return self.prefix + name

    def chunk_set(self, commit: str, tensor_key: str) -> dict:
        k = (commit, tensor_key)
        if k not in self._chunk_sets:
            raw = self.storage.get_or_none(f"{prefix(commit)}{tensor_key}/chunk_set")
            try:
                self._chunk_sets[k] = parse_chunk_set(raw) if raw else {}
            except UnicodeDecodeError:
                raise CorruptDatasetError("chunk_set is not UTF-8 text", tensor=tensor_key,
                                          key=f"{prefix(commit)}{tensor_key}/chunk_set") from None
        return self._chunk_sets[k]

    def chunk_key(self, tensor_key: str, name: str) -> str:
        """Where chunk `name` of a tensor is stored, walking chunk_sets from the head (spec §8.4)."""
        for commit in self.chain:
            if commit == FIRST_COMMIT_ID:
                break
            entry = self.chunk_set(commit, tensor_key).get(name)
            if entry is not None:
                return f"{prefix(entry[0] or commit)}{entry[1] or tensor_key}/chunks/{name}"
        return f"{tensor_key}/chunks/{name}"

    def forget_chunk_sets(self):
        self._chunk_sets.clear()

    def dumps(self) -> bytes:
        return json.dumps(self.info).encode()
