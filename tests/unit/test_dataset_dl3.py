"""ds.summary() prints what deeplake 3.9.52 prints for the same dataset (read-only load)."""

import contextlib
import io

import pytest

import deeplake_loader as dl
from tests.common import dl3

pytestmark = pytest.mark.dl3

_SCRIPT = """
import contextlib, io, deeplake
ds = deeplake.load(ARGS[0], read_only=True, verbose=False)
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    ds.summary()
emit(buf.getvalue())
"""


@pytest.mark.parametrize("vector", ["htypes", "groups", "generic_ragged", "image_png", "text", "class_label", "empty", "sequence"])
def test_summary_matches_deeplake(dl3_vectors, vector):
    path = dl3_vectors / vector / "data"
    want = dl3.run_dl3(_SCRIPT, path)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        dl.load(str(path), read_only=True).summary()
    assert buf.getvalue() == want
