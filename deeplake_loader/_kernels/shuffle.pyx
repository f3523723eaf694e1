"""Shuffling kernels: per-epoch permutations (Fisher-Yates) and a reservoir (buffer) shuffle over
rows that arrive chunk by chunk, bounded by a byte budget.

``ReservoirShuffler(budget_bytes, seed, warmup=0.5)``:
  ``push(rows, sizes) -> rows to emit now`` and ``drain() -> the remaining rows``.
  Every pushed row is emitted exactly once. Rows are kept while the buffer's bytes fit the budget;
  over budget, random rows are emitted until it fits again. So that the first batch does not wait
  for the whole buffer to fill, each push also emits ``warmup`` x (rows pushed) random rows while
  the buffer is under budget: output starts with the first chunk and mixing improves as the
  buffer grows. ``quality()`` measures the result.
"""

import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, uint64_t

from deeplake_loader._kernels.rng cimport rng_seed, rng_below

cnp.import_array()


def permutation(int64_t n, uint64_t seed):
    """A uniformly random permutation of range(n) (Fisher-Yates)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out = np.arange(n, dtype=np.int64)
    cdef int64_t[::1] o = out
    cdef int64_t i, j, t
    cdef Rng r
    rng_seed(&r, seed)
    with nogil:
        for i in range(n - 1, 0, -1):
            j = <int64_t>rng_below(&r, <uint64_t>(i + 1))
            t = o[i]
            o[i] = o[j]
            o[j] = t
    return out


cdef class ReservoirShuffler:
    def __init__(self, int64_t budget_bytes, uint64_t seed, double warmup=0.5):
        if budget_bytes < 0:
            raise ValueError(f"budget_bytes must be >= 0, got {budget_bytes}")
        if not 0.0 <= warmup <= 1.0:
            raise ValueError(f"warmup must be in [0, 1], got {warmup}")
        self.budget, self.warmup = budget_bytes, warmup
        self.rows = np.empty(1024, np.int64)
        self.sizes = np.empty(1024, np.int64)
        self.count = 0
        self.total = 0
        rng_seed(&self.rng, seed)

    def __len__(self):
        return self.count

    @property
    def buffered_bytes(self):
        return self.total

    cdef void _grow(self, int64_t need):
        cdef int64_t cap = self.rows.shape[0]
        if self.count + need <= cap:
            return
        while cap < self.count + need:
            cap *= 2
        rows = np.empty(cap, np.int64)
        sizes = np.empty(cap, np.int64)
        rows[:self.count] = np.asarray(self.rows)[:self.count]
        sizes[:self.count] = np.asarray(self.sizes)[:self.count]
        self.rows, self.sizes = rows, sizes

    cdef int64_t _emit(self, int64_t[::1] out, int64_t k, int64_t n_out) noexcept nogil:
        """Move random buffered rows to out[k:]: n_out of them, or until the budget holds if n_out < 0."""
        cdef int64_t j
        while self.count > 0 and ((n_out < 0 and self.total > self.budget) or n_out > 0):
            j = <int64_t>rng_below(&self.rng, <uint64_t>self.count)
            out[k] = self.rows[j]
            k += 1
            self.total -= self.sizes[j]
            self.count -= 1
            self.rows[j] = self.rows[self.count]
            self.sizes[j] = self.sizes[self.count]
            if n_out > 0:
                n_out -= 1
        return k

    def push(self, rows, sizes):
        """Add rows with their byte sizes; returns the rows to emit now (int64 array)."""
        r = np.ascontiguousarray(rows, dtype=np.int64).reshape(-1)
        s = np.ascontiguousarray(sizes, dtype=np.int64).reshape(-1)
        if r.shape[0] != s.shape[0]:
            raise ValueError(f"{r.shape[0]} rows but {s.shape[0]} sizes")
        if s.shape[0] and s.min() < 0:
            raise ValueError("byte sizes must be >= 0")
        cdef int64_t n = r.shape[0], i, k = 0
        self._grow(n)
        out = np.empty(self.count + n, np.int64)
        cdef int64_t[::1] o = out
        cdef int64_t[::1] rv = r
        cdef int64_t[::1] sv = s
        cdef int64_t warm = <int64_t>(n * self.warmup)
        with nogil:
            for i in range(n):
                self.rows[self.count] = rv[i]
                self.sizes[self.count] = sv[i]
                self.total += sv[i]
                self.count += 1
            if self.total <= self.budget:
                k = self._emit(o, 0, warm)
            k = self._emit(o, k, -1)
        return out[:k]

    def drain(self):
        """Every row still buffered, in random order."""
        out = np.empty(self.count, np.int64)
        cdef int64_t[::1] o = out
        with nogil:
            self._emit(o, 0, self.count)
        return out


def quality(order, n=None):
    """How shuffled ``order`` (a permutation of range(n)) is: (mean |position change| / n, which is
    about 1/3 for a uniform permutation and 0 for none; Spearman rank correlation with the identity,
    1 for none and about 0 for a uniform permutation)."""
    o = np.asarray(order, dtype=np.int64)
    n = len(o) if n is None else n
    if n < 2:
        return 0.0, 1.0
    pos = np.arange(n, dtype=np.float64)
    displacement = np.abs(o - pos).mean() / n
    d = o - pos
    rho = 1.0 - 6.0 * float((d * d).sum()) / (n * (n * n - 1.0))
    return float(displacement), rho


def locality(order, group_size: int) -> float:
    """Fraction of consecutive rows of ``order`` that come from the same group of ``group_size``
    rows (a chunk): about 1 when chunks are read one after the other, about group_size / n for a
    uniform permutation. Shows what a bigger shuffle buffer buys inside the permuted chunk order."""
    o = np.asarray(order, dtype=np.int64) // int(group_size)
    if len(o) < 2:
        return 1.0
    return float(np.count_nonzero(o[1:] == o[:-1])) / (len(o) - 1)
