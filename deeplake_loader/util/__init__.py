"""``deeplake.util``'s submodules that scripts import: ``exceptions`` (deeplake's error names) and
``iterable_ordered_dict`` (the sample type). See deeplake_loader/alias.py."""

from . import exceptions, iterable_ordered_dict

__all__ = ["exceptions", "iterable_ordered_dict"]
