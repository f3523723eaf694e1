"""A loader's place in its epochs: saved mid-epoch, restored exactly (``state_dict`` /
``load_state_dict``, the torch / torchdata / Lightning convention).

An epoch's plan (``plan.py``) is a pure function of the chain's config, the epoch number, the root
seed and (rank, world size). So a place is just numbers: epoch ``e``, and the batches every rank has
handed out — never the rows themselves. The state is a small JSON dict::

    {"format": "deeplake_loader.state/1", "epoch": 3, "segments": [[2, 117]], "seed": "<root>",
     "rank": 0, "world": 2, "fingerprint": {...}}

``segments`` is one ``[world size, batches per rank]`` pair per world size the epoch ran under
(DDP ranks hand out equal batch counts in lockstep, so one rank's state tells what every rank
consumed). Resuming with the same world size continues the last segment: the rest of the epoch and
every later epoch are what the uninterrupted run yields (rows, order, batch boundaries, and the
per-batch random streams of the fused crop and of ``random.batch_scope``). Resuming with another
world size starts a new segment: the positions no rank consumed yet are dealt to the new ranks in
contiguous, near-equal slices (shuffled again when the chain shuffles), each rank yields the same
number of batches — full batches first, its last one or two smaller — and every later epoch is
sharded for the new world. Only when a rank would be left with fewer rows than batches (batch size
1 with a remainder that does not divide by the world size, or fewer rows left than ranks) does it
wrap around to the first remaining rows, as short ranks do in every epoch (``plan.rank_positions``):
a row consumed before the save is never repeated; at most world-1 remaining rows are delivered
twice. With ``drop_last`` every rank yields ``floor(rows per rank / batch size)`` full batches and
the rest is dropped.

Cheap: ``schedule`` drops the consumed positions from the plan's steps, so chunks whose rows were
all consumed are never read; the steps that ran before the resume point are deferred, and a chunk
with rows still pending in the shuffle buffer is read the first time one of them is gathered
(``Schedule.claim``). Nothing consumed is decoded again.

With ``ignore_errors`` a batch can cover more plan positions than it holds rows (the skipped
samples'): the state then also says how many positions of its segment this rank consumed,
``"consumed": <n>`` (pipeline/refill.py), and a resume starts there. Only the rank that saved it
can use that count (DDP ranks skip different rows): another rank resumes as if nothing had been
skipped before the save (a warning says so), and a loader without ignore_errors refuses it.

``fingerprint`` names the dataset (its first chunk ids, stable across appends and copies), the
version (commit id), tensor lengths, the rows of the view / query, sample_by's weights and the
chain's batch size, drop_last, shuffle, buffer size and offset; ``load`` compares them one by one
and raises ``StateMismatchError`` naming every component that differs. Transforms, workers,
threads and the framework are not part of it: they may change between save and resume.
"""

from __future__ import annotations

import hashlib
import itertools
import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import random as dl_random
from ..errors import StateMismatchError
from . import plan

FORMAT = "deeplake_loader.state/1"


# ------------------------------------------------------------------------------- batch sizes
class BatchSizes:
    """The sizes of the batches one rank yields in one segment: ``full`` batches of
    ``batch_size``, then the smaller ``tail``."""

    def __init__(self, batch_size: int, full: int, tail=()):
        self.batch_size, self.full, self.tail = int(batch_size), int(full), tuple(int(t) for t in tail)

    @classmethod
    def epoch(cls, n: int, batch_size: int, drop_last: bool) -> "BatchSizes":
        full, rest = divmod(n, batch_size)
        return cls(batch_size, full, (rest,) if rest and not drop_last else ())

    @classmethod
    def spread(cls, n: int, batches: int, batch_size: int) -> "BatchSizes":
        """``n`` rows in exactly ``batches`` batches of 1..batch_size rows, full ones first."""
        if not batches <= n <= batches * batch_size:
            raise ValueError(f"cannot put {n} rows in {batches} batches of at most {batch_size}")
        excess, tail, full = batches * batch_size - n, [], batches
        while excess > 0:
            cut = min(excess, batch_size - 1)
            tail.insert(0, batch_size - cut)
            excess -= cut
            full -= 1
        return cls(batch_size, full, tail)

    def __len__(self) -> int:
        return self.full + len(self.tail)

    def rows_in(self, k: int) -> int:
        """Rows in the first ``k`` batches."""
        k = min(int(k), len(self))
        return min(k, self.full) * self.batch_size + sum(self.tail[:max(0, k - self.full)])

    def after(self, k: int):
        """The sizes of batch ``k`` onwards."""
        return itertools.chain(itertools.repeat(self.batch_size, max(0, self.full - k)),
                               self.tail[max(0, k - self.full):])


# ---------------------------------------------------------------------------------- schedules
@dataclass
class _Part:
    """One rank's share of one segment: positions into the epoch's rows, fetch steps, batch sizes."""
    positions: np.ndarray
    steps: list
    sizes: BatchSizes


def _emissions(steps) -> np.ndarray:
    parts = [e for _, _, e in steps]
    return np.concatenate(parts).astype(np.int64, copy=False) if parts else np.zeros(0, np.int64)


def _deal(left: np.ndarray, rank: int, world: int, batch_size: int, drop_last: bool):
    """An elastic segment: rank's contiguous share of the positions ``left`` and its batch sizes
    (the same count on every rank; see the module docstring)."""
    q, extra = divmod(len(left), world)
    start = rank * q + min(rank, extra)
    mine = left[start:start + q + (rank < extra)]
    if drop_last:
        batches = q // batch_size
        return mine[:batches * batch_size], BatchSizes(batch_size, batches)
    batches = -(-(q + (extra > 0)) // batch_size) if len(left) else 0
    if len(mine) < batches:  # batch size 1, or no row for this rank: wrap to the first rows left
        mine = np.concatenate([mine, left[:batches - len(mine)]])
    return mine, BatchSizes.spread(len(mine), batches, batch_size)


def _part(cfg, reader, epoch: int, rows: np.ndarray, segment: int, rank: int, world: int, consumed) -> _Part:
    if segment == 0:
        positions = plan.rank_positions(len(rows), rank, world, cfg.offset)
        sizes = BatchSizes.epoch(len(positions), cfg.batch_size, cfg.drop_last)
        more = ()
    else:
        positions, sizes = _deal(np.flatnonzero(~consumed), rank, world, cfg.batch_size, cfg.drop_last)
        more = (segment,)
    return _Part(positions, plan.fetch_steps(cfg, reader, rows[positions], epoch, rank, *more), sizes)


def _consumed(cfg, reader, epoch: int, rows: np.ndarray, segments) -> np.ndarray:
    """Which positions of the epoch's rows the finished ``segments`` consumed, on every rank."""
    consumed = np.zeros(len(rows), bool)
    for segment, (world, batches) in enumerate(segments):
        now = consumed.copy()
        for rank in range(world):
            part = _part(cfg, reader, epoch, rows, segment, rank, world, consumed)
            taken = _emissions(part.steps)[:part.sizes.rows_in(batches)]
            now[part.positions[taken]] = True
        consumed = now
    return consumed


@dataclass
class Schedule:
    """What one rank yields in one epoch from a place: ``order`` (rows by position), fetch ``steps``
    (chunk or None, positions to load, positions emitted), batch ``sizes`` from batch ``first`` on,
    and the chunks read on first need (``claim``). With ignore_errors (pipeline/refill.py) the
    batch sizes cut *units*, ``first`` is the first unit to run and ``handed`` the batches handed
    out before; ``resume_at``: the first emitted position to deliver; ``consumed``: the positions
    covered by the batches handed out so far (set as they go); ``decoded``: unit -> what its
    decode kept and skipped."""
    epoch: int
    rank: int
    world: int
    segment: int
    done: list  # the epoch's finished segments [(world, batches)]
    first: int  # batches (units) of this segment handed out before
    order: np.ndarray
    steps: list
    sizes: BatchSizes
    root: int
    deferred: dict = field(default_factory=dict)  # chunk -> positions still pending (of every early step reading it)
    owner: dict = field(default_factory=dict)  # position -> chunk
    handed: int = 0  # batches of this segment handed out before (== first unless something was skipped)
    resume_at: int = 0  # emitted positions before this one were consumed before the resume
    consumed: int | None = None  # emitted positions the batches handed out cover (ignore_errors)
    emission: np.ndarray = None  # every position this segment emits, in order (from its start)
    ended: bool = False  # ignore_errors: the batch last handed out was the epoch's last
    decoded: dict = field(default_factory=dict)  # ignore_errors: unit -> (kept positions, skips) of its decode

    @property
    def total(self) -> int:
        """Batches this segment yields on this rank, counting those handed out before the resume."""
        return len(self.sizes)

    def top_up_seed(self, purpose: str, j: int, k: int) -> int:
        """Seed of part ``k`` of top-up batch ``j`` (pipeline/refill.py): by batch, never by what
        came before."""
        more = (j, k) + ((self.segment,) if self.segment else ())
        return dl_random.stream(purpose + "/top-up", self.epoch, self.rank, 0, *more, root=self.root)

    def batch_sizes(self):
        return self.sizes.after(self.first)

    def seed(self, purpose: str, i: int) -> int:
        """Seed of the ``i``-th batch this schedule yields: the same for the same batch of the epoch
        whether or not the loader was resumed before it."""
        more = (self.first + i,) + ((self.segment,) if self.segment else ())
        return dl_random.stream(purpose, self.epoch, self.rank, 0, *more, root=self.root)

    def claim(self, position: int):
        """(chunk, positions) to read now for a deferred position, or None."""
        name = self.owner.get(position)
        if name is None:
            return None
        positions = self.deferred.pop(name)
        for p in positions.tolist():
            self.owner.pop(p, None)
        return name, positions


def _skip(sched: Schedule, skip: int) -> None:
    """Drop the first ``skip`` emitted positions from the steps: chunks with nothing pending are not
    read; steps that ran before the first batch to yield are deferred to ``claim``."""
    emitted = _emissions(sched.steps)
    consumed = np.zeros(len(sched.order), bool)
    consumed[emitted[:skip]] = True
    first_size = next(iter(sched.batch_sizes()), 0)
    out, seen = [], 0
    for name, positions, emits in sched.steps:
        early = seen < skip + first_size
        keep = emits[max(0, skip - seen):]
        seen += len(emits)
        pending = positions[~consumed[positions]] if len(positions) else positions
        if early and name is not None and len(pending):
            before = sched.deferred.get(name)  # a chunk the plan returns to (sample_by, a view's rows)
            sched.deferred[name] = pending if before is None else np.concatenate([before, pending])
            sched.owner.update(dict.fromkeys(pending.tolist(), name))
            name = None
        out.append((name if len(pending) else None, pending, keep))
    sched.steps = out


def _unit_at(sizes: BatchSizes, at: int) -> int:
    """The unit (batch of the plan) holding emitted position ``at`` (``len(sizes)`` past the end)."""
    if at < sizes.full * sizes.batch_size:
        return at // sizes.batch_size
    u, seen = sizes.full, sizes.full * sizes.batch_size
    for t in sizes.tail:
        if at < seen + t:
            return u
        u, seen = u + 1, seen + t
    return u


def schedule(pipe, epoch: int, segments=None, rank: int | None = None, world: int | None = None,
             consumed: int | None = None) -> Schedule:
    """The schedule of ``epoch`` on ``rank`` of ``world`` (default: torch.distributed's), resumed
    after ``segments`` (None or []: from its start); ``consumed``: the positions the last segment's
    batches covered on this rank, when skips made it differ from their row count."""
    cfg = pipe.cfg
    if rank is None:
        rank, world = plan.world(cfg)
    reader = pipe.columns[pipe.primary].reader if pipe.primary is not None else None
    segments = [tuple(s) for s in (segments or [])]
    if segments and segments[-1][0] == world:
        done, first = segments[:-1], segments[-1][1]
    else:
        done, first = segments, 0
    rows = plan.epoch_rows(cfg, epoch)
    taken = _consumed(cfg, reader, epoch, rows, done) if done else None
    part = _part(cfg, reader, epoch, rows, len(done), rank, world, taken)
    sched = Schedule(epoch, rank, world, len(done), done, first, rows[part.positions], part.steps, part.sizes,
                     dl_random.root(cfg.seed), handed=first, emission=_emissions(part.steps))
    if first > len(sched.sizes):
        raise ValueError(f"the loader state says {first} batches of epoch {epoch} were consumed, but this rank's "
                         f"epoch has {len(sched.sizes)}")
    if consumed is not None and not sched.sizes.rows_in(first) <= consumed <= len(sched.emission):
        raise ValueError(f"loader state: {first} batches of epoch {epoch} cannot have consumed {consumed} of the "
                         f"{len(sched.emission)} positions of this rank's epoch")
    if first:
        at = sched.sizes.rows_in(first) if consumed is None else int(consumed)
        sched.first, sched.resume_at = _unit_at(sched.sizes, at), at
        _skip(sched, sched.sizes.rows_in(sched.first))
    return sched


# -------------------------------------------------------------------------------- tracking
class Tracker:
    """Where a loader is: the epoch its newest iterator runs and the batches handed out so far.
    Only the newest iterator counts (an abandoned one no longer moves the place)."""

    def __init__(self):
        self.generation = 0
        self.sched = None  # schedule of the newest iterator's epoch
        self.batches = 0  # batches of sched's segment handed out (counting those before a resume)
        self.consumed = None  # positions they cover, when skipped samples made it differ from their rows
        self.finished = False
        self.loaded = None  # (epoch, segments, consumed) from load_state_dict, for the next iterator

    def start(self):
        """(epoch, segments, consumed) the next iterator starts from: a loaded state, else the epoch
        after the newest iterator's (an abandoned epoch is not resumed, as in torch and torchdata)."""
        if self.loaded is not None:
            return self.loaded
        return (1 if self.sched is None else self.sched.epoch + 1), [], None

    def position(self):
        """(epoch, segments, consumed) of the next batch to hand out (what state_dict saves)."""
        if self.loaded is not None:
            return self.loaded
        s = self.sched
        if s is None:
            return 1, [], None
        if self.finished or self.batches >= s.total or s.ended:
            return s.epoch + 1, [], None
        consumed = self.consumed
        if consumed is not None and consumed == s.sizes.rows_in(self.batches):
            consumed = None
        return s.epoch, [list(x) for x in s.done] + [[s.world, self.batches]], consumed


def _tracker(loader) -> Tracker:
    t = loader.__dict__.get("_tracker")
    if t is None:
        t = Tracker()
        object.__setattr__(loader, "_tracker", t)
    return t


def track(loader):
    """The loader's batches for its next epoch (resumed from a loaded state, if any), counting each
    one as it is handed out."""
    t = _tracker(loader)
    share_root(loader)
    pipe = loader._get_pipeline()
    epoch, segments, consumed = t.start()
    t.loaded = None
    sched = schedule(pipe, epoch, segments, consumed=consumed)
    t.generation += 1
    mine = t.generation
    t.sched, t.batches, t.consumed, t.finished = sched, sched.handed, consumed, False
    pipe.epoch = epoch - 1  # Pipeline.__iter__ runs epoch + 1 ...
    pipe.planned = sched  # ... with this schedule
    for batch in pipe:
        if t.generation == mine:
            t.batches += 1
            t.consumed = sched.consumed
        yield batch
    if t.generation == mine:
        t.finished = True


def _pin(loader, root: int) -> None:
    cfg = loader._config.with_(seed=int(root))
    object.__setattr__(loader, "_config", cfg)
    if loader._pipeline is not None:
        loader._pipeline.cfg = cfg


def share_root(loader) -> None:
    """A sharded loader with no seed anywhere: every rank takes rank 0's root (one broadcast, at the
    first iteration), so the ranks' plans, sample_by draws and saved states agree."""
    cfg = loader._config
    if cfg.seed is not None or dl_random.get_seed() is not None or plan.world(cfg)[1] <= 1:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        box = [dl_random.root()]
        dist.broadcast_object_list(box, src=0)
        _pin(loader, box[0])


# ----------------------------------------------------------------------------- fingerprint
def _digest(*arrays) -> str:
    h = hashlib.blake2b(digest_size=8)
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def fingerprint(cfg) -> dict:
    """What a state belongs to, component by component (see the module docstring)."""
    ds = cfg.dataset
    names = sorted(plan.selected_tensors(cfg))
    readers = {n: ds._reader(n) for n in names}
    firsts = [r.enc.table[0, 0] if len(r.enc.table) else 0 for r in readers.values()]
    rows = plan.base_rows(cfg)
    sample = None
    if cfg.sample is not None:
        weights, replace, size = cfg.sample
        sample = {"weights": _digest(np.asarray(weights, np.float64)), "replace": bool(replace),
                  "size": None if size is None else int(size)}
    return {
        "dataset": {"id": _digest(np.asarray(firsts, np.uint64)), "path": str(getattr(ds, "path", ""))},
        "version": ds.pending_commit_id,  # the node read: a branch head has its own id
        "tensors": {n: len(r) for n, r in readers.items()},
        "rows": {"count": int(len(rows)), "digest": _digest(rows)},
        "sample_by": sample,
        "batch_size": cfg.batch_size,
        "drop_last": cfg.drop_last,
        "shuffle": cfg.shuffle,
        "buffer_size": cfg.buffer_size if cfg.shuffle else None,
        "offset": cfg.offset,
    }


_WHAT = {
    "dataset": "dataset",
    "version": "version (commit id)",
    "tensors": "tensors and their lengths",
    "rows": "rows of the view / query",
    "sample_by": "sample_by",
}


def _differences(saved: dict, now: dict) -> list:
    out = []
    for key in now:
        a, b = saved.get(key, "<missing>"), now[key]
        if key == "dataset" and isinstance(a, dict):
            if a.get("id") != b["id"]:
                out.append(f"dataset: the state was saved on '{a.get('path')}' (id {a.get('id')}), this loader "
                           f"reads '{b['path']}' (id {b['id']})")
        elif a != b:
            out.append(f"{_WHAT.get(key, key)}: saved {a!r}, this loader {b!r}")
    return out


# ------------------------------------------------------------------------------ save / load
def save(loader) -> dict:
    """The loader's state: JSON-serialisable, small, never data."""
    t = _tracker(loader)
    cfg = loader._config
    epoch, segments, consumed = t.position()
    rank, world = plan.world(cfg)
    root = t.sched.root if t.sched is not None and t.loaded is None else dl_random.root(cfg.seed)
    out = {"format": FORMAT, "epoch": int(epoch), "segments": [[int(w), int(k)] for w, k in segments],
           "seed": str(root), "rank": int(rank), "world": int(world), "fingerprint": fingerprint(cfg)}
    if consumed is not None:
        out["consumed"] = int(consumed)
    return out


def _check(state) -> tuple:
    if not isinstance(state, dict):
        raise TypeError(f"load_state_dict expects the dict state_dict() returned, got {type(state).__name__}")
    if state.get("format") != FORMAT:
        raise ValueError(f"not a deeplake_loader state: 'format' is {state.get('format')!r}, expected {FORMAT!r}")

    def count(v, what, minimum):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
            raise ValueError(f"loader state: {what} must be an int >= {minimum}, got {v!r}")
        return int(v)

    epoch = count(state.get("epoch"), "'epoch'", 1)
    segments = state.get("segments")
    if not isinstance(segments, (list, tuple)):
        raise ValueError(f"loader state: 'segments' must be a list of [world size, batches], got {segments!r}")
    segs = []
    for i, s in enumerate(segments):
        if not isinstance(s, (list, tuple)) or len(s) != 2:
            raise ValueError(f"loader state: segment {i} must be [world size, batches], got {s!r}")
        segs.append([count(s[0], f"segment {i}'s world size", 1), count(s[1], f"segment {i}'s batches", 0)])
    try:
        root = int(state.get("seed"))
    except (TypeError, ValueError):
        raise ValueError(f"loader state: 'seed' must be an integer (as a string), got {state.get('seed')!r}") from None
    if root < 0:
        raise ValueError(f"loader state: 'seed' must be >= 0, got {root}")
    if not isinstance(state.get("fingerprint"), dict):
        raise ValueError("loader state: no 'fingerprint' dict")
    consumed = state.get("consumed")
    if consumed is not None:
        consumed = count(consumed, "'consumed'", 0)
    return epoch, segs, root, consumed


def load(loader, state) -> None:
    """Restore a state: the loader's next iterator continues from it (the torchdata convention)."""
    epoch, segments, root, consumed = _check(state)
    cfg = loader._config
    diffs = _differences(state["fingerprint"], fingerprint(cfg))
    if diffs:
        raise StateMismatchError("this loader state was saved by a different loader or dataset: " + "; ".join(diffs),
                                 components=diffs)
    rank, world = plan.world(cfg)
    if consumed is not None:
        if not cfg.ignore_errors:
            raise ValueError("this loader state was saved by a loader that skipped samples (ds.dataloader("
                             "ignore_errors=True)): its batches do not line up with the rows of a loader without it; "
                             "resume it with ds.dataloader(ignore_errors=True)")
        if state.get("rank") != rank or not segments or segments[-1][0] != world:
            warnings.warn(f"this loader state was saved by rank {state.get('rank')} after it skipped samples; rank "
                          f"{rank} resumes as if it had skipped none before the save (some of its rows may come "
                          "again or not at all)", stacklevel=3)
            consumed = None
    if len(segments) == 1 and segments[0][0] == world:
        total = plan.num_batches(cfg)
        if segments[0][1] > total:
            raise ValueError(f"loader state: {segments[0][1]} batches of epoch {epoch} consumed, but an epoch of this "
                             f"loader has {total}")
        if segments[0][1] == total:
            epoch, segments, consumed = epoch + 1, [], None
    _pin(loader, root)
    t = _tracker(loader)
    t.generation += 1  # a running iterator stops moving the place
    t.loaded = (epoch, segments, consumed)
