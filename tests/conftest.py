"""Session-wide fixtures shared by every test folder."""

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh, seeded NumPy generator per test: reproducible data, independent tests."""
    return np.random.default_rng(20261124)


@pytest.fixture(scope="session")
def moto_s3():
    """A moto S3 server on loopback with bucket 'lake' (tests.common.remote.MotoS3), for s3:// datasets
    and links in any test folder."""
    pytest.importorskip("moto.server", reason="moto[server] provides the local S3 endpoint")
    pytest.importorskip("s3fs", reason="s3fs serves s3:// paths")
    from tests.common.remote import MotoS3

    with MotoS3("lake") as server:
        yield server


# --- deeplake 3.9.52 side venv (tests/common/dl3.py) -------------------------------------------

import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

# `tests.common` must import the same way under `pytest` and `python -m pytest`.
_REPO_ROOT = str(_Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in _sys.path:
    _sys.path.insert(0, _REPO_ROOT)


@pytest.fixture(scope="session")
def dl3_python():
    """Interpreter of the deeplake 3.9.52 side venv, created on first use (fails in CI if impossible)."""
    from tests.common import dl3

    try:
        return dl3.dl3_python()
    except dl3.DL3Unavailable as e:
        dl3.skip_or_fail(str(e))


@pytest.fixture(scope="session")
def dl3_vectors(dl3_python):
    """Directory of the test vectors written by real deeplake 3.9.52 (cached by script hash)."""
    from tests.common import dl3

    try:
        return dl3.vectors_dir()
    except dl3.DL3Unavailable as e:
        dl3.skip_or_fail(str(e))


@pytest.fixture
def vector_copy(dl3_vectors, tmp_path):
    """copy(name) -> path of a private copy of vector `name`'s dataset folder (safe to mutate),
    at tmp_path/<name>/data (the layout dl3_vectors.dump_view expects)."""
    import shutil

    def copy(name):
        dst = tmp_path / name / "data"
        shutil.copytree(dl3_vectors / name / "data", dst)
        return dst

    return copy


@pytest.fixture
def seeded():
    """seeded(n): deeplake_loader.random.seed(n) for this test, back to fresh entropy after it."""
    from deeplake_loader import random as dl_random

    yield dl_random.seed
    dl_random.seed(None)
