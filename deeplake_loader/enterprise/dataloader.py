"""``deeplake.enterprise.dataloader``: ``dataloader(ds)`` and the ``DeepLakeDataLoader`` class
(deeplake_loader/dataloader.py; the class is made on first use, so importing this does not import
torch)."""

from ..dataloader import dataloader, loader_class


def __getattr__(name):
    if name == "DeepLakeDataLoader":
        return loader_class()
    raise AttributeError(name)


__all__ = ["DeepLakeDataLoader", "dataloader"]
