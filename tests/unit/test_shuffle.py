"""Permutations and the byte-budget reservoir shuffle (deeplake_loader._kernels.shuffle)."""

import numpy as np
import pytest

from deeplake_loader import random as dl_random
from deeplake_loader._kernels.shuffle import ReservoirShuffler, locality, permutation, quality


def run(budget, chunks, seed=0, warmup=0.5):
    r = ReservoirShuffler(budget, seed, warmup)
    out, first_emit = [], None
    start = 0
    for k, (n, size) in enumerate(chunks):
        got = r.push(np.arange(start, start + n), np.full(n, size))
        if len(got) and first_emit is None:
            first_emit = k
        out.append(got)
        start += n
    out.append(r.drain())
    return np.concatenate(out), start, first_emit


@pytest.mark.parametrize("seed", range(20))
def test_reservoir_emits_every_row_exactly_once(seed):
    rng = np.random.default_rng(seed)
    chunks = [(int(rng.integers(0, 300)), int(rng.integers(0, 5000))) for _ in range(int(rng.integers(1, 30)))]
    budget = int(rng.integers(0, 200_000))
    order, n, _ = run(budget, chunks, seed, warmup=float(rng.random()))
    assert np.array_equal(np.sort(order), np.arange(n))


def test_emission_starts_with_the_first_chunk():
    _, _, first = run(10**12, [(100, 1000)] * 10)  # a budget larger than the whole stream
    assert first == 0
    _, _, first = run(10**12, [(100, 1000)] * 10, warmup=0.0)
    assert first is None  # no warm-up: everything waits for drain


def test_samples_larger_than_the_budget_pass_through():
    order, n, first = run(10, [(5, 1000), (5, 1000)], warmup=0.0)
    assert first == 0 and np.array_equal(np.sort(order), np.arange(n))


def test_bigger_buffers_shuffle_better():
    chunks = [(100, 10_000)] * 100  # 10,000 rows of 10 kB
    small, _, _ = run(10_000 * 50, chunks, 1)
    big, _, _ = run(10_000 * 5_000, chunks, 1)
    d_small, rho_small = quality(small)
    d_big, rho_big = quality(big)
    assert d_big > d_small and rho_big < rho_small
    d_perm, rho_perm = quality(permutation(10_000, 3))
    assert 0.28 < d_perm < 0.38 and abs(rho_perm) < 0.05


def test_quality_of_the_identity():
    assert quality(np.arange(1000)) == (0.0, 1.0)


def test_permutation_is_a_permutation_and_seeded():
    p = permutation(1000, 7)
    assert np.array_equal(np.sort(p), np.arange(1000))
    assert np.array_equal(p, permutation(1000, 7)) and not np.array_equal(p, permutation(1000, 8))
    assert permutation(0, 1).tolist() == [] and permutation(1, 1).tolist() == [0]


def test_bad_arguments():
    with pytest.raises(ValueError):
        ReservoirShuffler(-1, 0)
    with pytest.raises(ValueError):
        ReservoirShuffler(10, 0, warmup=2.0)
    with pytest.raises(ValueError, match="sizes"):
        ReservoirShuffler(10, 0).push([1, 2], [3])


def test_random_seed_streams():
    dl_random.seed(5)
    a = dl_random.stream("shuffle", epoch=0)
    assert a == dl_random.stream("shuffle", epoch=0)
    assert a != dl_random.stream("shuffle", epoch=1) != dl_random.stream("sample", epoch=1)
    assert a != dl_random.stream("shuffle", epoch=0, rank=1)
    dl_random.seed(6)
    assert dl_random.stream("shuffle", epoch=0) != a
    dl_random.seed(None)
    x = dl_random.stream("shuffle", epoch=0)
    assert x != dl_random.stream("shuffle", epoch=1)
    with pytest.raises(ValueError):
        dl_random.seed(-3)


def test_locality_shows_the_buffer_effect():
    chunks = [(100, 10_000)] * 100
    small, _, _ = run(10_000 * 50, chunks, 1)
    big, _, _ = run(10_000 * 5_000, chunks, 1)
    assert locality(np.arange(10_000), 100) > 0.98
    assert locality(big, 100) < locality(small, 100)
    assert locality(permutation(10_000, 2), 100) < 0.03
