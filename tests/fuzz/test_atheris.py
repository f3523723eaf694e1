"""A short pass of every fuzz target (tests/fuzz/targets.py) over the normal build, in the normal
test run: $DEEPLAKE_LOADER_FUZZ_SECONDS per target (default 3 here). Guided by Python coverage only;
``make fuzz`` / ``make sanitize`` (and the end of ``make test``) fuzz the clang build whose C edges
guide too. A finding fails the test with its input's file and the fuzzer's log."""

import os

import pytest

from tests.fuzz import targets
from tests.fuzz.run import run_target

pytestmark = pytest.mark.fuzz


@pytest.mark.parametrize("target", sorted(targets.TARGETS))
def test_fuzz_target_stays_clean(target, tmp_path):
    pytest.importorskip("atheris")
    seconds = int(os.environ.get("DEEPLAKE_LOADER_FUZZ_SECONDS", "3"))
    ok, log, crashes = run_target(target, seconds, str(tmp_path))
    assert ok, f"fuzz target {target} found something; inputs: {crashes}\n{log}"
    assert "stat::number_of_executed_units" in log, log


@pytest.mark.parametrize("target", sorted(targets.TARGETS))
def test_fuzz_seeds_pass_through_the_target(target):
    """The seed corpora are valid inputs (the harnesses run them without a finding)."""
    targets.prepare()
    try:
        seeds, one = targets.TARGETS[target]
        for s in seeds():
            one(s)
    finally:
        import deeplake_loader as dl

        dl.set_max_image_pixels(None)
        os.environ.pop("DEEPLAKE_LOADER_MAX_IMAGE_PIXELS", None)
