"""Picklable helpers for loader tests (module level, so worker processes can import them)."""

import numpy as np


def keep(x):
    """Identity per-tensor transform: makes worker processes run without changing samples."""
    return x


def as_lists(samples):
    """collate_fn keeping each tensor's samples as a list (for tensors whose shapes differ); the
    samples' ``index`` (there when the loader returns it) stacked to (B, 1) as the default collate
    stacks it."""
    out = {k: [s[k] for s in samples] for k in samples[0].keys()}  # iterating a sample yields its values
    if "index" in out:
        out["index"] = np.stack(out["index"])
    return out


class Compose:
    """The shape of torchvision.transforms.Compose: a ``transforms`` list applied in turn."""

    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x


_calls = [0]


def slow_after_two(x):
    """Identity per-tensor transform that, from its third call in a process on, sleeps two minutes:
    a worker busy inside a long transform."""
    import time

    _calls[0] += 1
    if _calls[0] > 2:
        time.sleep(120)
    return x


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
