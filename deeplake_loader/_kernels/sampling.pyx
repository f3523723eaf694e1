"""Weighted sampling kernels: Vose's alias method (O(n) build, O(1) per draw, with replacement)
and weighted sampling without replacement (exponential keys, Efraimidis-Spirakis); ``weighted_order``
is ``sample_by(replace=False)``'s order over every row (Deep Lake's weighted reordering).

Both are seeded through ``rng.pxd`` so a seed gives the same rows on every platform.
"""

import numpy as np
cimport numpy as cnp
from libc.math cimport log, INFINITY
from libc.stdint cimport int64_t, uint64_t

from deeplake_loader._kernels.rng cimport Rng, rng_seed, rng_uniform, rng_below

cnp.import_array()


def check_weights(weights, allow_zero=False):
    """(weights as contiguous float64, their sum); ValueError naming the first bad weight's index
    when one is not finite or negative, or when they are empty or (unless ``allow_zero``) all zero."""
    w = np.ascontiguousarray(weights, dtype=np.float64).reshape(-1)
    if w.size == 0:
        raise ValueError("weights are empty: there is nothing to sample from")
    bad = np.nonzero(~np.isfinite(w) | (w < 0))[0]
    if len(bad):
        raise ValueError(f"weights must be finite and non-negative; weight at index {int(bad[0])} is {float(w[bad[0]])!r}")
    total = w.sum()
    if not total > 0 and not allow_zero:
        raise ValueError("weights sum to zero: at least one row needs a positive weight")
    return w, total


cdef int alias_build(const double* w, int64_t n, double* prob, int64_t* alias, int64_t* work) noexcept nogil:
    """Vose's alias table from weights w (already validated). work holds 2n int64."""
    cdef double total = 0
    cdef int64_t i, s, l, ns = 0, nl = 0
    cdef int64_t* small = work
    cdef int64_t* large = work + n
    for i in range(n):
        total += w[i]
    if not total > 0:
        return -1
    for i in range(n):
        prob[i] = w[i] * n / total
        alias[i] = i
        if prob[i] < 1.0:
            small[ns] = i
            ns += 1
        else:
            large[nl] = i
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        s = small[ns]
        l = large[nl - 1]
        alias[s] = l
        prob[l] = (prob[l] + prob[s]) - 1.0
        if prob[l] < 1.0:
            nl -= 1
            small[ns] = l
            ns += 1
    while nl > 0:  # leftovers are 1 up to rounding
        nl -= 1
        prob[large[nl]] = 1.0
    while ns > 0:
        ns -= 1
        prob[small[ns]] = 1.0
    return 0


cdef class AliasSampler:
    """Draw row indices with probability proportional to weights, with replacement."""

    cdef readonly cnp.ndarray prob
    cdef readonly cnp.ndarray alias
    cdef readonly int64_t n

    def __init__(self, weights):
        w, _ = check_weights(weights)
        self.n = w.shape[0]
        self.prob = np.empty(self.n, np.float64)
        self.alias = np.empty(self.n, np.int64)
        work = np.empty(2 * self.n, np.int64)
        cdef double[::1] wv = w
        cdef double[::1] pv = self.prob
        cdef int64_t[::1] av = self.alias
        cdef int64_t[::1] kv = work
        cdef int rc
        with nogil:
            rc = alias_build(&wv[0], self.n, &pv[0], &av[0], &kv[0])
        if rc != 0:
            raise ValueError("weights sum to zero")

    def draw(self, int64_t size, uint64_t seed, out=None):
        """size indices into an int64 array (``out`` if given), from the stream of ``seed``."""
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        if out is None:
            out = np.empty(size, np.int64)
        cdef int64_t[::1] o = out
        if o.shape[0] < size:
            raise ValueError(f"out holds {o.shape[0]} values, {size} requested")
        cdef double[::1] p = self.prob
        cdef int64_t[::1] a = self.alias
        cdef int64_t i, k, n = self.n
        cdef Rng r
        rng_seed(&r, seed)
        with nogil:
            for i in range(size):
                k = <int64_t>rng_below(&r, <uint64_t>n)
                o[i] = k if rng_uniform(&r) < p[k] else a[k]
        return out[:size]


def sample_without_replacement(weights, int64_t size, uint64_t seed):
    """size distinct indices, each draw proportional to the weights of the rows not yet drawn, in
    draw order (rows with weight 0 are never drawn)."""
    w, _ = check_weights(weights)
    cdef int64_t n = w.shape[0]
    cdef int64_t positive = int(np.count_nonzero(w))
    if size < 0 or size > positive:
        raise ValueError(f"cannot draw {size} distinct rows without replacement: {positive} rows have a "
                         "positive weight")
    keys = np.empty(n, np.float64)
    cdef double[::1] kv = keys
    cdef double[::1] wv = w
    cdef int64_t i
    cdef double u
    cdef Rng r
    rng_seed(&r, seed)
    with nogil:
        for i in range(n):
            u = rng_uniform(&r)
            if wv[i] > 0:
                kv[i] = -log(1.0 - u) / wv[i]  # exponential key: smallest keys win
            else:
                kv[i] = INFINITY
    if size == 0:
        return np.empty(0, np.int64)
    if size < n:
        part = np.argpartition(keys, size - 1)[:size]
    else:
        part = np.arange(n)
    return part[np.argsort(keys[part], kind="stable")].astype(np.int64)


def weighted_order(weights, size, uint64_t seed):
    """Deep Lake's sampling without replacement over every row: the rows of positive weight in a
    weighted random order (each next row drawn in proportion to the weights of those not drawn
    yet), then the rows of weight 0 in dataset order; the first ``size`` of them (None: all; at
    most every row)."""
    w, _ = check_weights(weights, allow_zero=True)
    cdef int64_t n = w.shape[0]
    cdef int64_t want = n if size is None else min(int(size), n)
    if want < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    positive = int(np.count_nonzero(w))
    first = sample_without_replacement(w, min(want, positive), seed) if positive else np.empty(0, np.int64)
    if want <= positive:
        return first
    return np.concatenate([first, np.flatnonzero(w == 0)[:want - positive].astype(np.int64)])
