"""``deeplake.integrations.pytorch.common.collate_fn``: the loader's default collate for
``.pytorch()`` (samples merged key by key, then torch tensors), for a user collate_fn that
post-processes what the default gives (``def my_collate(samples): batch = collate_fn(samples)...``).
"""

from __future__ import annotations


def collate_fn(batch):
    """A list of samples (dicts, tuples or values) → one batch of torch tensors, as the loader's
    default collate builds it."""
    from ...iterators import converter
    from ...pipeline.collate import default_collate

    return converter("pytorch")(default_collate(list(batch)))


__all__ = ["collate_fn"]
