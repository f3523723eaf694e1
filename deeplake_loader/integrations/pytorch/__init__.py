"""``deeplake.integrations.pytorch``: ``common.collate_fn``, the default collate of ``.pytorch()``
loaders, for collate_fns that wrap it."""

from . import common

__all__ = ["common"]
