"""Framework conversion of finished batches: ``.pytorch()``, ``.tensorflow()``, ``.numpy()``.

What a batch is (its container, its keys, its values' dtypes) is decided once, in
pipeline/collate.py; a converter only turns numpy arrays into the framework's tensors and keeps
every container as it is: an ``IterableOrderedDict`` stays one (iterating it yields its values,
so ``for images, labels, index in loader`` unpacks in ``tensors=`` order with ``index`` last), a
transform's plain ``dict`` stays a dict, a list stays a list. ``.numpy()`` batches (lists of
samples) and whatever a user's ``collate_fn`` returns are handed over untouched, as deeplake
3.9.52 hands them.
"""

from __future__ import annotations

from ..pipeline.collate import remade  # noqa: F401 - the converters keep containers with it


def _untouched(batch):
    return batch


def converter(mode: str):
    """A function batch -> framework batch for mode 'pytorch' | 'tensorflow' | 'numpy' | None."""
    if mode == "pytorch":
        from .torch import convert
    elif mode == "tensorflow":
        from .tensorflow import convert
    else:
        return _untouched
    return convert


def converter_for(cfg):
    """The converter of a loader config: its framework's, or none when a collate_fn makes the batch."""
    if cfg.collate_fn is not None:
        return _untouched
    return converter(cfg.mode)

