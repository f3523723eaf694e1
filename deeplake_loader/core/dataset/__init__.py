"""``deeplake.core.dataset``: ``Dataset`` (deeplake_loader.dataset.Dataset)."""

from ...dataset import Dataset
from . import dataset

__all__ = ["Dataset", "dataset"]
