"""``deeplake_loader.random.seed(n)``: makes shuffles and sample_by reproducible (deeplake.random).

Every random decision of the loader draws its seed from ``stream(purpose, epoch, rank, worker,
*more)``: a SeedSequence of a root seed and those coordinates, so two runs with the same root make
the same choices, and each epoch / rank / worker / batch gets its own independent stream. The root
is the global seed, or a loader's own (pinned by ``load_state_dict``, or shared by rank 0 over
``torch.distributed``). Without a seed, a fresh entropy pool is drawn once per process, so epochs
still differ from each other; ``root()`` tells which root is in use, so a loader's state can carry it
to another process.

``batch_scope(seed)`` seeds Python's ``random``, NumPy's global generator and torch's CPU generator
for the transforms of one batch, then puts them back: a transform that draws from them (torchvision,
albumentations, ``np.random``) gives the same result for batch b whichever process runs it, so a
resumed loader reproduces it. ``scoped_generator()`` is the batch's own NumPy Generator inside such
a scope (None outside).

Those generators are process-wide, so the scope is only entered where the user's own code runs and
the training loop waits for it: the thread that iterates the loader, or a worker process. Never on
a background thread of ours. A framework that pulls batches on a thread of its own while the
training step runs (tf.data's generator thread) marks that pull ``isolated()``: there the scope
sets only ``scoped_generator()`` and leaves the global generators alone.
"""

from __future__ import annotations

import contextlib
import random as _py_random
import sys
import threading
import zlib

import numpy as np

_state = {"seed": None, "entropy": None}
_scope = threading.local()


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


def root(pinned=None) -> int:
    """The root seed streams derive from: ``pinned`` (a loader's own) when given, else the global
    seed, else this process's entropy."""
    return _root() if pinned is None else int(pinned)


def stream(purpose: str, epoch: int = 0, rank: int = 0, worker: int = 0, *more: int, root: int | None = None) -> int:
    """A 64-bit seed for one (purpose, epoch, rank, worker[, more coordinates]) under ``root``
    (default: the global root)."""
    key = zlib.crc32(purpose.encode())
    base = _root() if root is None else int(root)
    ss = np.random.SeedSequence(base, spawn_key=(key, int(epoch), int(rank), int(worker)) + tuple(int(m) for m in more))
    return int(ss.generate_state(1, np.uint64)[0])


def scoped_generator():
    """The NumPy Generator of the batch whose transforms run in this thread (None outside one)."""
    return getattr(_scope, "generator", None)


@contextlib.contextmanager
def isolated():
    """Batches pulled inside this block, on this thread, run their transforms without touching the
    process-wide generators (only ``scoped_generator()`` is set): for threads that run while the
    training loop runs (see the module doc)."""
    before = getattr(_scope, "isolated", False)
    _scope.isolated = True
    try:
        yield
    finally:
        _scope.isolated = before


@contextlib.contextmanager
def batch_scope(seed: int):
    """Run one batch's transforms with Python's ``random``, NumPy's global generator and torch's CPU
    generator (when torch is imported) seeded from ``seed``, and ``scoped_generator()`` set; the
    previous states are restored on exit (the training loop's own random draws are not disturbed).
    Inside ``isolated()``, only ``scoped_generator()`` is set."""
    ss = np.random.SeedSequence(int(seed))
    py_seed, np_seed, torch_seed, gen_seed = (int(x) for x in ss.generate_state(4, np.uint64))
    if getattr(_scope, "isolated", False):
        previous = getattr(_scope, "generator", None)
        _scope.generator = np.random.default_rng(gen_seed)
        try:
            yield _scope.generator
        finally:
            _scope.generator = previous
        return
    py_state, np_state = _py_random.getstate(), np.random.get_state()
    torch = sys.modules.get("torch")
    gen = getattr(torch, "default_generator", None) if torch is not None else None
    torch_state = gen.get_state() if gen is not None else None
    previous = getattr(_scope, "generator", None)
    _py_random.seed(py_seed)
    np.random.seed(np_seed & 0xFFFFFFFF)
    if gen is not None:
        gen.manual_seed(torch_seed)
    _scope.generator = np.random.default_rng(gen_seed)
    try:
        yield _scope.generator
    finally:
        _scope.generator = previous
        _py_random.setstate(py_state)
        np.random.set_state(np_state)
        if gen is not None:
            gen.set_state(torch_state)
