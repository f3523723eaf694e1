"""Framework conversion of collated batches: ``.pytorch()``, ``.tensorflow()``, ``.numpy()``.

A batch is a ``Batch``: a dict whose iteration yields its values, so
``for images, labels, index in loader`` unpacks in ``tensors=`` order with ``index`` last.
"""

from __future__ import annotations


class Batch(dict):
    def __iter__(self):
        return iter(self.values())


def converter(mode: str):
    """A function batch -> framework batch for mode 'pytorch' | 'tensorflow' | 'numpy' | None. It
    changes containers and array types only: the values' dtypes are the batch's own
    (pipeline/collate.py)."""
    if mode == "pytorch":
        from .torch import convert
    elif mode == "tensorflow":
        from .tensorflow import convert
    else:
        from .numpy import convert
    return convert


def converter_for(cfg):
    """The converter of a loader config's framework (its mode)."""
    return converter(cfg.mode)
