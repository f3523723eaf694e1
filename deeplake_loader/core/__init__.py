"""``deeplake.core``: ``deeplake.core.dataset.Dataset`` and ``deeplake.core.tensor.Tensor``, the
names scripts use in type hints and isinstance checks (deeplake_loader's own classes)."""

from . import dataset, tensor
from .dataset import Dataset
from .tensor import Tensor

__all__ = ["Dataset", "Tensor", "dataset", "tensor"]
