"""Build of the compiled kernels (everything under deeplake_loader/_kernels/).

Convention: every ``_kernels/<family>.pyx`` becomes the extension
``deeplake_loader._kernels.<family>``; the C helpers ``_kernels/src/<family>_*.c``
are compiled into it. All kernels link libjpeg-turbo (libjpeg API), libpng and libdeflate, and
use OpenMP for their ``prange`` loops.

``build_ext`` first finds the system libraries (``deeplake_loader/_system_libs.py``: pkg-config,
then a compile-and-link probe; never downloaded) and stops with one message naming every missing
one and the Debian and conda packages that provide it; then Cython translates and the compiler
builds each kernel.

``DEEPLAKE_LOADER_DEBUG_KERNELS=1`` turns Cython's bounds and wraparound checks on.
"""
import glob
import importlib.util
import os
import sys

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext as _build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
KERNELS = os.path.join("deeplake_loader", "_kernels")

debug = os.environ.get("DEEPLAKE_LOADER_DEBUG_KERNELS") == "1"
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": debug,
    "initializedcheck": debug,
    "nonecheck": False,
    "cdivision": True,
    "embedsignature": True,
}


def _system_libs():
    """deeplake_loader/_system_libs.py, loaded by path: the package itself is not built yet."""
    path = os.path.join(HERE, "deeplake_loader", "_system_libs.py")
    spec = importlib.util.spec_from_file_location("_deeplake_loader_system_libs", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class build_ext(_build_ext):
    """setuptools' build_ext (Cython's when Cython is installed, which the build requires), after
    the system libraries are found: their flags go to every kernel."""

    def run(self):
        libs = _system_libs()
        try:
            flags, missing = libs.find()
        except libs.CompilerNotFound as e:
            raise SystemExit("error: " + libs.compiler_message(e)) from None
        if missing:
            raise SystemExit("error: " + libs.missing_message(missing))
        for ext in self.extensions:
            ext.include_dirs += [d for d in flags.include_dirs if d not in ext.include_dirs]
            ext.library_dirs += [d for d in flags.library_dirs if d not in ext.library_dirs]
            ext.libraries += [n for n in flags.libraries if n not in ext.libraries]
        super().run()


def extensions():
    exts = []
    for pyx in sorted(glob.glob(os.path.join(KERNELS, "*.pyx"))):
        family = os.path.splitext(os.path.basename(pyx))[0]
        c_sources = sorted(glob.glob(os.path.join(KERNELS, "src", family + "_*.c")))
        ext = Extension(
            "deeplake_loader._kernels." + family,
            sources=[pyx] + c_sources,
            include_dirs=[numpy.get_include(), os.path.join(KERNELS, "src")],
            extra_compile_args=["-O3", "-fopenmp", "-std=c11"],
            extra_link_args=["-fopenmp"],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        )
        ext.cython_directives = DIRECTIVES  # read by Cython's build_ext when it translates the .pyx
        exts.append(ext)
    return exts


setup(ext_modules=extensions(), cmdclass={"build_ext": build_ext})
