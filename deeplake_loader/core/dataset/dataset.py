"""``deeplake.core.dataset.dataset``: ``Dataset`` (deeplake_loader.dataset.Dataset)."""

from ...dataset import Dataset

__all__ = ["Dataset"]
