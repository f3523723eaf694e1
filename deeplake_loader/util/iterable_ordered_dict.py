"""``deeplake.util.iterable_ordered_dict.IterableOrderedDict``: the dict samples reach transforms
and ``collate_fn`` in, and the default batch (iterating it yields its values): the loader's own
class (sample_forms.py)."""

from ..sample_forms import IterableOrderedDict

__all__ = ["IterableOrderedDict"]
