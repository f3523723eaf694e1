"""``deeplake.integrations``: ``pytorch`` (``deeplake.integrations.pytorch.common.collate_fn``)."""
