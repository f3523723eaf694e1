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

__version__ = "0.1.0"

__all__ = ["Dataset", "Tensor", "dataloader", "dataset", "empty", "errors", "exists", "get_max_image_pixels", "link", "load", "random", "read",
           "set_max_image_pixels", "transforms", "__version__"]
