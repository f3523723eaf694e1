"""``deeplake_loader.random.seed(n)``: makes shuffles and sample_by reproducible (deeplake.random).

Every random decision of the loader draws its seed from ``stream(purpose, epoch, rank, worker)``:
a SeedSequence of the global seed and those coordinates, so two runs with the same seed make the
same choices, and each epoch / rank / worker gets its own independent stream. Without a seed, a
fresh entropy pool is drawn once per process, so epochs still differ from each other.
"""

from __future__ import annotations

import zlib

import numpy as np

_state = {"seed": None, "entropy": None}


def seed(n) -> None:
    """Set the global seed (None: back to fresh entropy)."""
    if n is not None and (not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0):
        raise ValueError(f"seed must be a non-negative int or None, got {n!r}")
    _state["seed"] = None if n is None else int(n)
    _state["entropy"] = None


def get_seed():
    return _state["seed"]


def _root() -> int:
    if _state["seed"] is not None:
        return _state["seed"]
    if _state["entropy"] is None:
        _state["entropy"] = int(np.random.SeedSequence().entropy)
    return _state["entropy"]


def stream(purpose: str, epoch: int = 0, rank: int = 0, worker: int = 0) -> int:
    """A 64-bit seed for one (purpose, epoch, rank, worker)."""
    key = zlib.crc32(purpose.encode())
    ss = np.random.SeedSequence(_root(), spawn_key=(key, int(epoch), int(rank), int(worker)))
    return int(ss.generate_state(1, np.uint64)[0])
