"""``deeplake.core.tensor``: ``Tensor`` (deeplake_loader.dataset.Tensor)."""

from ..dataset import Tensor

__all__ = ["Tensor"]
