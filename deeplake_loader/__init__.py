"""deeplake_loader: a fast, offline drop-in for Deep Lake 3's dataloader.

``import deeplake_loader as deeplake`` gives the subset of the deeplake 3 API that training and
data-preparation scripts use: datasets (load/empty/dataset/exists/read) and ``ds.dataloader()``.
"""

from deeplake_loader import _build_check  # noqa: F401  (explains a missing compiled kernel)
from deeplake_loader import errors, random
from deeplake_loader.dataset import Dataset, Tensor, dataset, empty, exists, load
from deeplake_loader.sample import link, read
from deeplake_loader.dataloader import dataloader  # noqa: E402  (the function shadows the module name)
from deeplake_loader import transforms
from deeplake_loader.limits import get_max_image_pixels, set_max_image_pixels
from deeplake_loader.alias import install_as_deeplake
from deeplake_loader.deepcopy import deepcopy

__version__ = "0.1.0"

# deeplake's submodule names (README "deeplake submodules"), imported when first reached as attributes
# (``deeplake.util.exceptions.DatasetHandlerError`` after ``import deeplake_loader as deeplake``)
_SUBMODULES = ("constants", "core", "enterprise", "integrations", "util")


def __getattr__(name):
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Dataset", "Tensor", "dataloader", "dataset", "deepcopy", "empty", "errors", "exists", "get_max_image_pixels",
           "install_as_deeplake", "link", "load", "random", "read", "set_max_image_pixels", "transforms", "__version__"]
