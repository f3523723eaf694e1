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
            from deeplake_loader._system_libs import install_hint

            present = sorted(os.listdir(_HERE))
            raise ImportError(
                f"deeplake_loader's compiled kernel '{family}' cannot be imported ({e}). "
                f"{install_hint(str(e))} Build in place with `pip install -e .` or `bash scripts/build.sh`. "
                f"Contents of {_HERE}: {present}"
            ) from e


check()
