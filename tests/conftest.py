"""Session-wide fixtures shared by every test folder."""

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh, seeded NumPy generator per test: reproducible data, independent tests."""
    return np.random.default_rng(20261124)
