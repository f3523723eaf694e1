"""``ds.dataloader(ignore_errors=True)``: a sample that cannot be read, decoded or transformed is
left out, the batches stay full (the missing sample is replaced by the following rows of the
plan), and every skip is reported in ``loader.summary`` (a ``Summary`` of ``SkippedSample``s:
epoch, tensor, row, stage, the error). Without ignore_errors nothing is skipped: the error is
raised, naming tensor and row. deeplake 3.9.52 drops the whole batch of a bad sample instead, and
its ``summary`` says nothing.

**Units and batches.** An epoch's plan is cut into *units* exactly as it is cut into batches
without errors (``state.Schedule``'s batch sizes): unit u is read, decoded and transformed as batch
u would be, with batch u's random streams (fused crops, ``random.batch_scope``), in the calling
process or in a worker, which then returns a ``collate.Unit`` (its kept samples and its skips)
instead of a batch. ``batches`` cuts the kept samples of the units, in plan order, into batches of
the planned sizes and collates them (collate.py). A unit that lost nothing and lines up with its
batch becomes that batch as it is, so until the first skip the batches are exactly those of a
loader without ignore_errors. After the last unit, what is left makes a last, shorter batch
(dropped under ``drop_last``): an epoch with skips can yield fewer batches than ``len(loader)``.

**Where errors are caught.** Reading (``read``, in the fetch stage): a chunk that cannot be read
loses the rows it would have served; a sample whose stored bytes or metadata are broken is found
by reading the rows one by one. Decoding (``decode``): a column that raises a sample error is
decoded one row at a time to find every bad row (a batch kernel's error names only the first),
then the good rows are decoded again as one batch, the unit's crop generator made again from its
seed. Transforms: the Assembler catches a ``TransformError`` per sample. An error of the batch as a
whole (a collate_fn, a shape mismatch in the default collate) is raised: it is no sample's.

**The place.** ``sched.consumed`` counts the plan positions covered by the batches handed out;
pipeline/state.py saves it once it differs from the batches' row count, and a resume starts at the
unit holding that position, reading, decoding and transforming that unit again from its start
(its random streams are the unit's) and dropping what came before: at most batch_size - 1 samples
are decoded twice, and the rest of the epoch is exactly the uninterrupted run's.

**Distributed.** Every rank yields ``len(loader)`` batches (DDP waits for the slowest rank at each
step, so a rank that ran short would hang the others). A rank whose skips leave it short tops its
epoch up with batches of its own rows taken again: top-up batch j starts at position
j * batch_size of the rank's order, cyclically, and takes the next good samples — as short ranks
already wrap around to their first rows.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import (CorruptDatasetError, DecodeError, DeepLakeLoaderError, LinkedFileError, RemoteReadError,
                      TransformError)

log = logging.getLogger("deeplake_loader")

# errors that belong to one sample (or to the rows of one chunk): what ignore_errors skips
READ_ERRORS = (DecodeError, CorruptDatasetError, LinkedFileError, RemoteReadError)
DECODE_ERRORS = READ_ERRORS + (TransformError,)  # TransformError: a fused crop of an empty image
MAX_RECORDS = 10_000  # skips kept in a Summary, each with its reason and traceback (every skip is counted)


class SkippedSample:
    """One skipped sample: ``epoch`` (None in a torch DataLoader rebuilt from the loader's parts),
    source ``row``, ``tensor`` (None for a transform of the whole sample), ``stage`` ('read',
    'decode' or 'transform'), ``error`` (the exception's class name), ``reason`` (its message) and,
    for a transform, the ``traceback`` of the user's code."""

    __slots__ = ("epoch", "row", "tensor", "stage", "error", "reason", "traceback")

    def __init__(self, row, tensor, stage, error, reason, traceback="", epoch=None):
        self.row, self.tensor, self.stage = int(row), tensor, stage
        self.error, self.reason, self.traceback, self.epoch = error, reason, traceback, epoch

    @classmethod
    def of(cls, e, *, row, stage, tensor=None):
        """The record of exception ``e`` that made the sample of ``row`` be skipped."""
        tensor = getattr(e, "tensor", None) or tensor
        if isinstance(e, TransformError):
            cause = e.__cause__
            error = type(cause).__name__ if cause is not None else type(e).__name__
            reason = f"{error}: {cause}" if cause is not None else str(e).split("\n\n", 1)[0]
            return cls(row, tensor, stage, error, reason, e.traceback_text)
        reason = getattr(e, "reason", None) or str(e)
        return cls(row, tensor, stage, type(e).__name__, str(reason))

    def __reduce__(self):
        return SkippedSample, (self.row, self.tensor, self.stage, self.error, self.reason, self.traceback, self.epoch)

    def __eq__(self, other):
        return isinstance(other, SkippedSample) and self.__reduce__() == other.__reduce__()

    def __repr__(self):
        where = f"tensor '{self.tensor}', " if self.tensor else ""
        epoch = f"epoch {self.epoch}, " if self.epoch is not None else ""
        return f"SkippedSample({epoch}{where}row {self.row}, {self.stage}: {self.reason})"


class Summary:
    """What a loader skipped under ignore_errors, in the order the samples were met: iterate it (or
    ``skipped``) for the ``SkippedSample``s, ``len()`` counts every skip, ``rows`` lists their rows,
    ``print(summary)`` shows a table. The first ``MAX_RECORDS`` skips are kept, later ones counted."""

    def __init__(self, verbose: bool = False):
        self.verbose = verbose
        self.skipped: list = []
        self.count = 0

    def add(self, record: SkippedSample) -> None:
        self.count += 1
        if len(self.skipped) < MAX_RECORDS:
            self.skipped.append(record)
        if self.verbose:
            log.warning("deeplake_loader skipped %r", record)

    @property
    def rows(self) -> list:
        return [r.row for r in self.skipped]

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        return iter(list(self.skipped))

    def __getitem__(self, i):
        return self.skipped[i]

    def __bool__(self) -> bool:
        return self.count > 0

    def __repr__(self):
        return f"Summary({self.count} sample(s) skipped)"

    def __str__(self):
        if not self.count:
            return "ignore_errors: no sample skipped"
        lines = [f"ignore_errors: {self.count} sample(s) skipped"]
        for r in self.skipped:
            lines.append(f"  epoch {r.epoch if r.epoch is not None else '-'}  row {r.row}  "
                         f"{r.tensor or '(sample)'}  {r.stage}: {r.reason}")
        if self.count > len(self.skipped):
            lines.append(f"  ... {self.count - len(self.skipped)} more not kept")
        return "\n".join(lines)


# -------------------------------------------------------------------------------------- reading
class Bad:
    """A stored value that could not be read (in a fetched column, in place of the value)."""

    __slots__ = ("error",)

    def __init__(self, error):
        self.error = error


def _named_rows(e) -> set:
    """Source rows an error names."""
    if isinstance(e, RemoteReadError):
        return {int(r) for r in (e.rows or ())}
    index = getattr(e, "index", None)
    return set() if index is None else {int(index)}


def read(fn, rows, error=None):
    """``fn(rows)`` (a column's stored values), with the values of rows that cannot be read
    replaced by ``Bad`` markers: the rows an error names are marked, the others read again; an
    error that names no row of these is narrowed down row by row. ``error``: the one the first
    attempt raised, if already made."""
    rows = np.asarray(rows, np.int64)
    if error is None:
        try:
            return fn(rows)
        except READ_ERRORS as e:
            error = e
    values = [None] * len(rows)
    todo = list(range(len(rows)))
    while todo:
        if error is None:
            try:
                got = fn(rows[todo])
            except READ_ERRORS as e:
                error = e
            else:
                for k, v in zip(todo, got):
                    values[k] = v
                return values
        named = _named_rows(error)
        hit = [k for k in todo if int(rows[k]) in named]
        if not hit or len(todo) == 1:
            for k in todo:
                try:
                    values[k] = fn(rows[k:k + 1])[0]
                except READ_ERRORS as e:
                    values[k] = Bad(e)
            return values
        for k in hit:
            values[k] = Bad(error)
        gone = set(hit)
        todo = [k for k in todo if k not in gone]
        error = None
    return values


def _take(values, keep):
    if isinstance(values, np.ndarray):
        return values[np.asarray(keep, np.int64)]
    return [values[k] for k in keep]


# ------------------------------------------------------------------------------------- decoding
def decode(pipe, rows, raw, seed):
    """The unit's columns with every sample that cannot be read or decoded left out:
    (kept rows, columns, kept positions, [(position, SkippedSample)])."""
    rows = np.asarray(rows, np.int64)
    bad = {}
    for name, values in raw.items():
        if isinstance(values, list):
            for k, v in enumerate(values):
                if isinstance(v, Bad) and k not in bad:
                    bad[k] = SkippedSample.of(v.error, row=int(rows[k]), stage="read", tensor=name)
    while True:
        keep = [k for k in range(len(rows)) if k not in bad]
        sub_rows = rows[keep]
        sub = {name: _take(values, keep) for name, values in raw.items()}
        if not keep:  # nothing of this unit can be read
            return sub_rows, {name: [] for name in pipe.columns}, keep, sorted(bad.items())
        rng = np.random.default_rng(seed)  # the unit's crops, the same on every attempt
        columns, failed = {}, None
        for name, col in pipe.columns.items():
            try:
                columns[name] = pipe.decoder.column(col, sub[name], sub_rows, rng)
            except DECODE_ERRORS:
                failed = name
                break
        if failed is None:
            return sub_rows, columns, keep, sorted(bad.items())
        del columns
        found = _bad_samples(pipe, pipe.columns[failed], sub[failed], sub_rows)
        if not found:  # one by one they all decode: not a sample's error after all
            rng = np.random.default_rng(seed)
            pipe.decoder.column(pipe.columns[failed], sub[failed], sub_rows, rng)  # raise it as it is
            raise RuntimeError(f"tensor '{failed}': the batch failed to decode, but each of its samples decodes")
        for j, record in found:
            bad[keep[j]] = record


def _bad_samples(pipe, col, values, rows) -> list:
    """[(position, SkippedSample)] of the samples of ``values`` that do not decode alone."""
    out = []
    for j in range(len(rows)):
        try:
            pipe.decoder.column(col, _take(values, [j]), rows[j:j + 1], np.random.default_rng(0))
        except DECODE_ERRORS as e:
            stage = "transform" if isinstance(e, TransformError) else "decode"
            out.append((j, SkippedSample.of(e, row=int(rows[j]), stage=stage, tensor=col.name)))
    return out


# -------------------------------------------------------------------------------------- batches
class _Pending:
    """Kept samples waiting for their batch, in plan order: per unit, its rows, its samples (or
    columns), and the plan position each one came from."""

    def __init__(self):
        self.parts = []  # [Unit-like (rows, samples | columns), positions]
        self.n = 0

    def add(self, unit, positions, keep=None):
        """Queue a unit's kept samples (``keep``: a mask of those still to deliver, after a resume)."""
        if keep is not None and not keep.all():
            idx = np.flatnonzero(keep)
            rows = unit.rows[idx]
            if unit.columns is not None:
                part = (rows, None, {k: _take(v, idx) for k, v in unit.columns.items()})
            else:
                part = (rows, [unit.samples[i] for i in idx], None)
            positions = positions[idx]
        else:
            part = (unit.rows, unit.samples, unit.columns)
        if len(part[0]):
            self.parts.append((part, positions))
            self.n += len(part[0])

    def take(self, n, assemble):
        """The first ``n`` pending samples collated: (batch, plan position of the last one)."""
        got, left = [], n
        while left:
            (rows, samples, columns), positions = self.parts[0]
            if len(rows) <= left:
                got.append(((rows, samples, columns), positions))
                self.parts.pop(0)
                left -= len(rows)
                continue
            head = ((rows[:left], None if samples is None else samples[:left],
                     None if columns is None else {k: v[:left] for k, v in columns.items()}), positions[:left])
            self.parts[0] = ((rows[left:], None if samples is None else samples[left:],
                              None if columns is None else {k: v[left:] for k, v in columns.items()}),
                             positions[left:])
            got.append(head)
            left = 0
        self.n -= n
        rows = np.concatenate([r for (r, _, _), _ in got])
        last = int(got[-1][1][-1])
        if got[0][0][2] is not None:  # the fast path's columns
            columns = got[0][0][2] if len(got) == 1 else {
                k: _concat([c[k] for (_, _, c), _ in got]) for k in got[0][0][2]}
            return assemble.collate_columns(columns, rows), last
        samples = [s for (_, ss, _), _ in got for s in ss]
        return assemble.collate_samples(samples, rows), last


def _concat(parts):
    """One column of several units: one array when every part is an array of one sample shape,
    else a list."""
    if all(isinstance(p, np.ndarray) for p in parts) and len({p.shape[1:] for p in parts}) == 1 \
            and len({p.dtype for p in parts}) == 1:
        return np.concatenate(parts)
    out = []
    for p in parts:
        out.extend(list(p))
    return out


def batches(pipe, units, sched):
    """The epoch's batches from its units' results (see the module doc); ``sched.consumed`` says
    after each one how many plan positions the batches handed out cover, and ``sched.ended``
    whether it was the epoch's last (known by making the next one first: a state saved after the
    last batch then points at the next epoch, as without skips)."""
    made = _cut(pipe, units, sched)
    try:
        held = next(made, None)
        while held is not None:
            try:
                following = next(made, None)
            except BaseException:  # an error of a later batch: after the batch before it
                sched.consumed = held[1]
                yield held[0]
                raise
            sched.consumed, sched.ended = held[1], following is None
            batch, held = held[0], following
            yield batch
            del batch
    finally:
        made.close()  # and with it the epoch's stages (units)
        units.close()


def _cut(pipe, units, sched):
    """(batch, plan positions covered so far) of the epoch, in order."""
    assemble, summary, cfg = pipe.assemble, pipe.summary, pipe.cfg
    targets = sched.sizes.after(sched.handed)
    target = next(targets, None)
    yielded = sched.handed
    pending = _Pending()
    for i, unit in enumerate(units):
        kept_decoded, decode_skips = sched.decoded.pop(i)
        kept_decoded = np.asarray(kept_decoded, np.int64)
        start = sched.sizes.rows_in(sched.first + i)
        positions = start + kept_decoded[unit.kept]
        skips = [(start + k, rec) for k, rec in decode_skips]
        skips += [(start + int(kept_decoded[j]), rec) for j, rec in unit.skipped]
        for position, record in sorted(skips, key=lambda s: s[0]):
            if position >= sched.resume_at:
                record.epoch = sched.epoch
                summary.add(record)
        keep = positions >= sched.resume_at if len(positions) and positions[0] < sched.resume_at else None
        pending.add(unit, positions, keep)
        del unit
        while target is not None and pending.n >= target:
            batch, last = pending.take(target, assemble)
            yielded += 1
            target = next(targets, None)
            yield batch, last + 1
    if target is not None and pending.n and not cfg.drop_last:
        batch, last = pending.take(pending.n, assemble)
        yielded += 1
        target = next(targets, None)
        yield batch, last + 1
    if sched.world > 1 and yielded < sched.total:
        yield from _top_up(pipe, sched, yielded)


def _top_up(pipe, sched, yielded):
    """A distributed rank that ran short: its last batches taken again from its own rows (see the
    module doc), so that every rank yields ``sched.total`` batches."""
    order = sched.order[sched.emission]  # the rank's rows in the order its epoch yields them
    n = len(order)
    if not n:
        return
    size = pipe.cfg.batch_size
    for j in range(yielded, sched.total):
        pending, start, seen, k = _Pending(), (j * size) % n, 0, 0
        while pending.n < size and seen < n:
            count = min(size - pending.n, n - seen)
            at = (start + seen + np.arange(count)) % n
            seen += count
            unit = pipe.unit_now(order[at], sched.top_up_seed("transform", j, k), sched.top_up_seed("scope", j, k),
                                 epoch=sched.epoch)
            k += 1
            pending.add(unit, at[unit.kept])
        if not pending.n:  # none of the rank's rows can be read: nothing to top up with
            log.warning("deeplake_loader: rank %d has no readable row left to top up its epoch %d", sched.rank,
                        sched.epoch)
            return
        batch, _ = pending.take(pending.n, pipe.assemble)
        yield batch, len(sched.emission)



def whole(pipe, unit, rows):
    """The batch of every sample a unit of ``rows`` kept (a torch DataLoader rebuilt from the
    loader's parts asks for exactly those rows: nothing follows to refill from). With none kept
    there is no batch to give: an error names the rows."""
    pending = _Pending()
    pending.add(unit, np.arange(len(unit.rows)))
    if not pending.n:
        err = DeepLakeLoaderError(f"ignore_errors: no row of this batch can be read, decoded or transformed (rows "
                                  f"{[int(r) for r in rows][:8]}; loader.summary says why), and a torch DataLoader "
                                  "rebuilt from the loader's parts cannot refill it from other rows")
        err.rows = [int(r) for r in rows]
        raise err
    return pending.take(pending.n, pipe.assemble)[0]
