"""Import every compiled kernel once at package import, with an explanation when it fails."""

import glob
import importlib
import os

_HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_kernels")


def check():
    for pyx in sorted(glob.glob(os.path.join(_HERE, "*.pyx"))):
        family = os.path.splitext(os.path.basename(pyx))[0]
        try:
            importlib.import_module(f"deeplake_loader._kernels.{family}")
        except ImportError as e:
            present = sorted(os.listdir(_HERE))
            raise ImportError(
                f"deeplake_loader's compiled kernel '{family}' is not built ({e}). "
                "Build it with `pip install -e .` (needs a C compiler, libjpeg62-turbo-dev and "
                "libpng-dev: `apt-get install -y libjpeg62-turbo-dev libpng-dev pkg-config`). "
                f"Contents of {_HERE}: {present}"
            ) from e


check()
