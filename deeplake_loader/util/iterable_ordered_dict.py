"""``deeplake.util.iterable_ordered_dict.IterableOrderedDict``: the dict samples reach transforms
and ``collate_fn`` in (iterating it yields its values), here the loader's own sample type."""

from ..sample_forms import IterableSample as IterableOrderedDict

__all__ = ["IterableOrderedDict"]
