"""Row plan of one epoch: view -> query -> sample_by -> distributed slice -> offset -> shuffle.

The result is the epoch ``order`` (absolute row ids of the source dataset, duplicates allowed after
sampling with replacement) and the fetch ``steps``: which chunk of the primary tensor to load, which
positions of ``order`` it serves, and which positions become ready to emit after it. Without
shuffle, steps follow ``order`` run by run; with shuffle, the primary tensor's chunks come in a new
permutation each epoch and a byte-budget reservoir decides the emission order.

Everything here is a pure function of (config, epoch, rank, world size) and the root seed
(``cfg.seed`` or ``deeplake_loader.random``'s): ``pipeline/state.py`` relies on that to name a
place in an epoch by a count of batches, and to recompute what another rank consumed.
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
    """Rows after sample_by: ``size`` (without replacement at most every row), else every row
    (without replacement: a weighted reordering of all of them)."""
    if cfg.sample is None:
        return n
    weights, replace, size = cfg.sample
    if size is None:
        return n
    return int(size) if replace else min(int(size), n)


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


def epoch_rows(cfg, epoch: int) -> np.ndarray:
    """Rows of the epoch before the distributed slice: the (viewed, queried) rows, or sample_by's
    draw from them (the same draw on every rank)."""
    rows = base_rows(cfg)
    if cfg.sample is not None and len(rows):
        weights, replace, _ = cfg.sample
        size = sampled_count(cfg, len(rows))
        seed = dl_random.stream("sample_by", epoch, root=cfg.seed)
        if replace:
            picks = sampling.AliasSampler(weights).draw(size, seed)
        else:
            picks = sampling.weighted_order(weights, size, seed)
        rows = rows[picks]
    return rows


def rank_positions(n: int, rank: int, world_size: int, offset: int) -> np.ndarray:
    """Positions into the epoch's rows that rank yields, in order: its contiguous slice, wrapped
    around so every rank yields the same number of rows, then rolled by ``offset``."""
    start, stop, per = rank_slice(n, rank, world_size)
    mine = np.arange(start, stop, dtype=np.int64)
    if len(mine) < per:  # wrap around so every rank yields the same number of rows
        mine = np.concatenate([mine, np.arange(per - len(mine), dtype=np.int64) % n])
    if offset and len(mine):
        mine = np.roll(mine, -(offset % len(mine)))
    return mine


def epoch_order(cfg, epoch: int, rank: int | None = None, world_size: int | None = None) -> np.ndarray:
    """Rows rank yields in ``epoch`` (before the shuffle); rank and world default to
    torch.distributed's."""
    if rank is None:
        rank, world_size = world(cfg)
    rows = epoch_rows(cfg, epoch)
    return rows[rank_positions(len(rows), rank, world_size, cfg.offset)]


def fetch_steps(cfg, reader, order: np.ndarray, epoch: int, rank: int, *more: int):
    """``steps`` of the chain's shuffle setting for one rank's ``order`` (``more``: extra seed
    coordinates, for the orders of an elastic resume)."""
    from .window import split_budget  # the fetch window's bytes come out of the shuffle buffer's

    reservoir = split_budget(int(cfg.buffer_size * 1e6), cfg.shuffle)[0]
    return steps(reader, order, shuffle=cfg.shuffle, budget_bytes=reservoir,
                 seed=dl_random.stream("shuffle", epoch, rank, 0, *more, root=cfg.seed))


def yield_order(cfg, reader, order: np.ndarray, epoch: int, rank: int) -> np.ndarray:
    """The rank's rows of ``epoch`` in the order the loader yields them: the emission order of
    ``fetch_steps`` (what the pipeline's batches follow, ``batch_size`` at a time)."""
    if not len(order):
        return order
    return order[np.concatenate([emitted for _, _, emitted in fetch_steps(cfg, reader, order, epoch, rank)])]


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
