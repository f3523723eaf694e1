"""Row plan of one epoch: view -> query -> sample_by -> distributed slice -> offset -> shuffle.

The result is the epoch ``order`` (absolute row ids of the source dataset, duplicates allowed after
sampling with replacement) and the fetch ``steps``: which chunk of the primary tensor to load, which
positions of ``order`` it serves, and which positions become ready to emit after it. Without
shuffle, steps follow ``order`` run by run; with shuffle, the primary tensor's chunks come in a new
permutation each epoch and a byte-budget reservoir decides the emission order.
"""

from __future__ import annotations

import math

import numpy as np

from .. import random as dl_random
from .._kernels import sampling, shuffle as shuffle_kernels
from ..format.encoders import ChunkIdEncoder


def world(cfg):
    """(rank, world size): the shard a framework's DistributedSampler gave (``cfg.shard``), else
    torch.distributed's when distributed=True (its own error if it is not initialised), else (0, 1)."""
    if cfg.shard is not None:
        return cfg.shard
    if not cfg.distributed:
        return 0, 1
    import torch.distributed as dist

    return dist.get_rank(), dist.get_world_size()


def selected_tensors(cfg) -> list:
    ds = cfg.dataset
    if cfg.tensors is not None:
        return list(cfg.tensors)
    if isinstance(cfg.transform, dict):
        return [k for k in cfg.transform if k != "index"]
    if cfg.query_tensors is not None:
        return list(cfg.query_tensors)
    return list(ds.tensors)


def base_rows(cfg) -> np.ndarray:
    """Absolute rows of the (viewed, queried) dataset over the selected tensors."""
    ds = cfg.dataset
    names = selected_tensors(cfg)
    n_source = min((len(ds._reader(t)) for t in names), default=0)
    rows = np.arange(n_source, dtype=np.int64) if ds.index_rows is None else np.asarray(ds.index_rows, np.int64)
    rows = rows[rows < n_source] if ds.index_rows is not None else rows
    if cfg.query_rows is not None:
        rows = rows[np.asarray(cfg.query_rows, dtype=np.int64)]
    return rows


def sampled_count(cfg, n: int) -> int:
    """Rows after sample_by: ``size``, else every row (with replacement) or every row with a positive
    weight (without: a weighted reordering)."""
    if cfg.sample is None:
        return n
    weights, replace, size = cfg.sample
    if size is not None:
        return int(size)
    return n if replace else int(np.count_nonzero(weights))


def rank_slice(n: int, rank: int, world_size: int):
    """Contiguous [start, stop) of rank, and the per-rank count every rank yields (short ranks wrap)."""
    per = math.ceil(n / world_size) if n else 0
    start = min(rank * per, n)
    return start, min(start + per, n), per


def num_rows(cfg) -> int:
    """Rows one epoch yields on this rank."""
    rank, w = world(cfg)
    n = sampled_count(cfg, len(base_rows(cfg)))
    return rank_slice(n, rank, w)[2]


def num_batches(cfg) -> int:
    n = num_rows(cfg)
    return n // cfg.batch_size if cfg.drop_last else math.ceil(n / cfg.batch_size)


def epoch_order(cfg, epoch: int, sample_seed: int | None = None) -> np.ndarray:
    rows = base_rows(cfg)
    rank, w = world(cfg)
    if cfg.sample is not None and len(rows):
        weights, replace, _ = cfg.sample
        size = sampled_count(cfg, len(rows))
        # the same draw on every rank, then sliced
        seed = dl_random.stream("sample_by", epoch) if sample_seed is None else sample_seed
        if replace:
            picks = sampling.AliasSampler(weights).draw(size, seed)
        else:
            picks = sampling.sample_without_replacement(weights, size, seed)
        rows = rows[picks]
    start, stop, per = rank_slice(len(rows), rank, w)
    mine = rows[start:stop]
    if len(mine) < per:  # wrap around so every rank yields the same number of rows
        extra = rows[np.arange(per - len(mine)) % len(rows)]
        mine = np.concatenate([mine, extra])
    if cfg.offset and len(mine):
        mine = np.roll(mine, -(cfg.offset % len(mine)))
    return mine


def yield_order(cfg, reader, order: np.ndarray, seed: int) -> np.ndarray:
    """The epoch's rows in the order the loader yields them: ``order`` itself without shuffle, else
    the emission order of ``steps`` (what the pipeline's batches follow, ``batch_size`` at a time)."""
    if not cfg.shuffle or not len(order):
        return order
    st = steps(reader, order, shuffle=True, budget_bytes=buffer_bytes(cfg), seed=seed)
    return order[np.concatenate([emitted for _, _, emitted in st])]


def buffer_bytes(cfg) -> int:
    """The shuffle buffer's budget: ``buffer_size`` is in MB."""
    return int(cfg.buffer_size * 1e6)


def primary_tensor(cfg, names) -> str | None:
    """The tensor whose chunks drive fetching: the one with the most chunks (images, usually)."""
    best, most = None, -1
    for t in names:
        r = cfg.dataset._reader(t)
        k = len(r.enc.table)
        if k > most:
            best, most = t, k
    return best


def steps(reader, order: np.ndarray, *, shuffle: bool, budget_bytes: int, seed: int):
    """[(chunk name or None, positions it serves, positions ready to emit after it)]."""
    n = len(order)
    if n == 0:
        return []
    erow, _ = reader.enc.locate(order) if len(reader.enc.table) else (np.zeros(n, np.int64), None)
    names = [ChunkIdEncoder.name(c) for c in reader.enc.table[:, 0]] if len(reader.enc.table) else [None]
    if not shuffle:
        cut = np.nonzero(np.diff(erow))[0] + 1
        return [(names[erow[g[0]]], g, g) for g in np.split(np.arange(n, dtype=np.int64), cut)]
    by_chunk = np.argsort(erow, kind="stable")
    cut = np.nonzero(np.diff(erow[by_chunk]))[0] + 1
    groups = np.split(by_chunk, cut)
    first = groups[0]
    est = _bytes_per_row(reader, names[erow[first[0]]])
    res = shuffle_kernels.ReservoirShuffler(int(budget_bytes), seed)
    out = []
    for g in shuffle_kernels.permutation(len(groups), seed ^ 0x5DEECE66D):
        pos = groups[g]
        out.append((names[erow[pos[0]]], pos, res.push(pos, np.full(len(pos), est, np.int64))))
    out.append((None, np.empty(0, np.int64), res.drain()))
    return out


def _bytes_per_row(reader, chunk_name) -> int:
    if chunk_name is None:
        return 1
    chunk = reader.load_chunk(chunk_name)
    return max(1, len(chunk.data) // max(1, chunk.num_samples))
