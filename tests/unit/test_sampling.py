"""Alias sampling and weighted sampling without replacement (deeplake_loader._kernels.sampling)."""

import math

import numpy as np
import pytest

from deeplake_loader._kernels.sampling import AliasSampler, sample_without_replacement


def chi2_critical(df: int, z: float = 3.719) -> float:
    """Upper critical value of chi-square with df degrees of freedom at the normal quantile z
    (3.719 ~ p = 1e-4), by the Wilson-Hilferty approximation."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def chi2(counts, probs):
    expected = probs * counts.sum()
    keep = expected > 0
    assert counts[~keep].sum() == 0, "a zero-weight row was drawn"
    return float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum()), int(keep.sum()) - 1


@pytest.mark.parametrize("weights", [
    [1, 2, 3, 4], [0.1] * 50 + [5.0], np.arange(200, dtype=float) % 7, [3, 0, 0, 1e-3, 7],
])
def test_alias_draws_follow_the_weights_chi_square(weights):
    w = np.asarray(weights, dtype=float)
    draws = AliasSampler(w).draw(1_000_000, seed=12345)
    counts = np.bincount(draws, minlength=len(w))
    stat, df = chi2(counts, w / w.sum())
    assert stat < chi2_critical(df), (stat, df)


def test_alias_is_reproducible_and_seeds_differ():
    s = AliasSampler([5, 1, 1, 3])
    a, b, c = s.draw(1000, 1), s.draw(1000, 1), s.draw(1000, 2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_alias_writes_into_out():
    out = np.full(20, -1, np.int64)
    got = AliasSampler([1, 0, 1]).draw(10, 3, out=out)
    assert got.base is out or np.shares_memory(got, out)
    assert set(out[:10].tolist()) <= {0, 2} and (out[10:] == -1).all()


@pytest.mark.parametrize("bad, where", [([1, -1, 2], "index 1"), ([1, np.nan], "index 1"), ([0, 0], "sum to zero"),
                                        ([], "empty"), ([1, np.inf], "index 1")])
def test_bad_weights_are_named(bad, where):
    with pytest.raises(ValueError, match=where):
        AliasSampler(bad)
    with pytest.raises(ValueError):
        sample_without_replacement(bad, 1, 0)


def test_without_replacement_gives_distinct_rows_and_follows_weights():
    w = np.array([8.0, 4.0, 2.0, 1.0, 0.0])
    picks = sample_without_replacement(w, 4, 9)
    assert sorted(picks.tolist()) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="positive weight"):
        sample_without_replacement(w, 5, 0)
    firsts = np.bincount([sample_without_replacement(w, 1, s)[0] for s in range(4000)], minlength=5)
    stat, df = chi2(firsts, w / w.sum())  # the first draw is proportional to the weights
    assert stat < chi2_critical(df), (stat, firsts)
