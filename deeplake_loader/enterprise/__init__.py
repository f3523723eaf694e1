"""``deeplake.enterprise``: the chain loader (``dataloader``, ``DeepLakeDataLoader``) and ``query``
(a view of the rows a query selects), all of them deeplake_loader's own."""

from ..dataloader import loader_class
from .dataloader import dataloader


def query(dataset, query_string: str):
    """``deeplake.enterprise.query(ds, text)``: the view of ``dataset`` a query selects, as
    ``ds.query(text)``."""
    return dataset.query(query_string)


def __getattr__(name):  # the class is made on first use (making it imports torch)
    if name == "DeepLakeDataLoader":
        return loader_class()
    raise AttributeError(name)


__all__ = ["DeepLakeDataLoader", "dataloader", "query"]
