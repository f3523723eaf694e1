"""Picklable helpers for loader tests (module level, so worker processes can import them)."""


def keep(x):
    """Identity per-tensor transform: makes worker processes run without changing samples."""
    return x


def as_lists(samples):
    """collate_fn keeping each tensor's samples as a list (for tensors whose shapes differ); the
    loader adds ``index``."""
    return {k: [s[k] for s in samples] for k in samples[0]}


def record_worker(folder, worker_id):
    """worker_init_fn (bound to a folder with functools.partial): leaves a file named after the
    worker id and the process that ran it."""
    import os
    from pathlib import Path

    (Path(folder) / f"{worker_id}-{os.getpid()}").write_text("")


def sleepy(x):
    """Per-tensor transform that takes 3 s (for timeouts)."""
    import time

    time.sleep(3)
    return x
