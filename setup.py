"""Build of the compiled kernels (everything under deeplake_loader/_kernels/).

Convention: every ``_kernels/<family>.pyx`` becomes the extension
``deeplake_loader._kernels.<family>``; the C helpers ``_kernels/src/<family>_*.c``
are compiled into it. All kernels link libjpeg-turbo (libjpeg API) and libpng,
found with pkg-config (never downloaded), and use OpenMP for their ``prange`` loops.

``DEEPLAKE_LOADER_DEBUG_KERNELS=1`` turns Cython's bounds and wraparound checks on.
"""
import glob
import os
import shutil
import subprocess

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
KERNELS = os.path.join("deeplake_loader", "_kernels")


def pkg_config(*packages):
    """Include dirs, library dirs and libraries of system packages, via pkg-config."""
    flags = {"include_dirs": [], "library_dirs": [], "libraries": []}
    for pkg in packages:
        out = ""
        if shutil.which("pkg-config"):
            try:
                out = subprocess.check_output(
                    ["pkg-config", "--cflags", "--libs", pkg], text=True, stderr=subprocess.DEVNULL
                )
            except subprocess.CalledProcessError:
                out = ""
        if not out:
            # Debian ships libjpeg62-turbo-dev without a .pc file for "libjpeg" on some releases.
            flags["libraries"].append({"libjpeg": "jpeg", "libpng": "png", "libdeflate": "deflate"}[pkg])
            continue
        for tok in out.split():
            if tok.startswith("-I"):
                flags["include_dirs"].append(tok[2:])
            elif tok.startswith("-L"):
                flags["library_dirs"].append(tok[2:])
            elif tok.startswith("-l"):
                flags["libraries"].append(tok[2:])
    return flags


def extensions():
    libs = pkg_config("libjpeg", "libpng", "libdeflate")
    exts = []
    for pyx in sorted(glob.glob(os.path.join(KERNELS, "*.pyx"))):
        family = os.path.splitext(os.path.basename(pyx))[0]
        c_sources = sorted(glob.glob(os.path.join(KERNELS, "src", family + "_*.c")))
        exts.append(
            Extension(
                "deeplake_loader._kernels." + family,
                sources=[pyx] + c_sources,
                include_dirs=[numpy.get_include(), os.path.join(KERNELS, "src")] + libs["include_dirs"],
                library_dirs=libs["library_dirs"],
                libraries=libs["libraries"],
                extra_compile_args=["-O3", "-fopenmp", "-std=c11"],
                extra_link_args=["-fopenmp"],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            )
        )
    return exts


debug = os.environ.get("DEEPLAKE_LOADER_DEBUG_KERNELS") == "1"
directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": debug,
    "initializedcheck": debug,
    "nonecheck": False,
    "cdivision": True,
    "embedsignature": True,
}

setup(ext_modules=cythonize(extensions(), compiler_directives=directives, quiet=True))
