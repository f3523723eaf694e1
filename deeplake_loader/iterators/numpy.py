"""Batches as numpy arrays (text, json and bytes stay lists)."""

from . import Batch


def convert(batch):
    return Batch(batch) if isinstance(batch, dict) else batch
