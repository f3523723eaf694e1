"""state_dict() / load_state_dict(): a loader saved mid-epoch and resumed in a NEW process yields
exactly what the uninterrupted run yields (rows, order, batch boundaries, pixels after the random
crop and flip, values of transforms that draw from the global generators); resuming reads only the
chunks that still hold pending rows; a state of another loader is refused naming what differs;
elastic resumes (another world size) deliver every row not yet consumed exactly once."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deeplake_loader as dl
from deeplake_loader.errors import StateMismatchError
from deeplake_loader.pipeline import state as loader_state
from tests.common import resume

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def resume_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("resume") / "ds")
    resume.build(path)
    return path


@pytest.fixture(scope="module")
def resume_ds(resume_path):
    return dl.load(resume_path, read_only=True)


def state_after(ds, name, epochs_done, k):
    """The state of a fresh ``name`` chain after ``epochs_done`` whole epochs and ``k`` batches."""
    loader = resume.chain(ds, name)
    for _ in range(epochs_done):
        for _ in loader:
            pass
    it = iter(loader)
    for _ in range(k):
        next(it)
    out = loader.state_dict()
    loader.close()
    return json.loads(json.dumps(out))  # what a checkpoint file gives back


def in_buffer_fill(loader, k):
    """True when the first k batches are all emitted while the shuffle buffer is still under its
    budget (each push then emits exactly half of what it pushed)."""
    with loader:
        sched = loader_state.schedule(loader._get_pipeline(), 1, [], 0, 1)
    emitted = 0
    for name, positions, out in sched.steps:
        if name is None or len(out) != int(len(positions) * 0.5):
            return False
        emitted += len(out)
        if emitted >= k * resume.BATCH:
            return True
    return False


def run_child(tmp_path, path, jobs):
    spec = tmp_path / "jobs.json"
    spec.write_text(json.dumps({"path": path, "jobs": jobs}))
    proc = subprocess.run([sys.executable, "-m", "tests.common.resume", str(spec)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


CHAINS = ["shuffle", "shuffle_workers", "shuffle_workers_persistent", "sample_by", "query_offset", "plain_tensors"]


@pytest.mark.parametrize("name", CHAINS)
def test_resume_in_a_new_process_equals_the_uninterrupted_run(tmp_path, resume_path, resume_ds, name):
    ref = resume.chain(resume_ds, name)
    e1, e2, e3 = resume.run(ref, 3)
    ref.close()
    n = len(e1)
    assert n == len(ref) and e1 != e2  # a new shuffle (or crop) every epoch
    fill = 2
    if "shuffle" in name or name in ("sample_by", "plain_tensors"):
        assert in_buffer_fill(resume.chain(resume_ds, name), fill)
    cases = {  # k: (epochs before, batches, what the child must see in two iterations)
        "first": (0, 1, e1[1:] + e2),
        "fill": (0, fill, e1[fill:] + e2),
        "mid": (0, n // 2, e1[n // 2:] + e2),
        "before_last": (0, n - 1, e1[n - 1:] + e2),
        "last": (0, n, e2 + e3),
        "epoch2": (1, n // 3, e2[n // 3:] + e3),
    }
    if "workers" in name:  # spawning workers per epoch is slow: fewer places, same coverage of the ends
        cases = {k: cases[k] for k in ("first", "mid", "last")}
    jobs, expected = {}, {}
    for case, (before, k, want) in cases.items():
        jobs[case] = {"chain": name, "state": state_after(resume_ds, name, before, k), "epochs": 2}
        expected[case] = want
    if name == "shuffle_workers":  # workers kept alive between epochs or not: the same batches
        jobs["to_persistent"] = dict(jobs["mid"], chain="shuffle_workers_persistent")
        expected["to_persistent"] = expected["mid"]
    got = run_child(tmp_path, resume_path, jobs)
    for case, want in expected.items():
        flat = [b for epoch in got[case] for b in epoch]
        assert [b[0] for b in flat] == [b[0] for b in want], f"{name}/{case}: rows or batch boundaries differ"
        assert flat == want, f"{name}/{case}: same rows, different pixels or transformed values"


@pytest.fixture(scope="module")
def damaged_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("resume_damaged") / "ds")
    resume.build_damaged(path)
    return path


@pytest.mark.parametrize("name", ["ignore_shuffle", "ignore_shuffle_workers", "ignore_plain"])
def test_resume_after_skipped_samples_in_a_new_process_equals_the_uninterrupted_run(tmp_path, damaged_path, name):
    """ignore_errors: the skipped rows shift every later batch; a state saved anywhere resumes
    exactly (the rows, batch boundaries, crops and random transform values of the uninterrupted
    run), with the skipped rows never delivered."""
    ds = dl.load(damaged_path, read_only=True)
    ref = resume.chain(ds, name)
    e1, e2, e3 = resume.run(ref, 3)
    ref.close()
    bad = set(resume.BAD_IMAGES) | (set() if name == "ignore_plain" else set(resume.BAD_ROWS))
    for epoch in (e1, e2, e3):
        rows = [r for b in epoch for r in b[0]]
        assert sorted(rows) == sorted(set(range(resume.ROWS)) - bad)
        assert [len(b[0]) for b in epoch[:-1]] == [resume.BATCH] * (len(epoch) - 1)
    n = len(e1)
    cases = {"first": (0, 1, e1[1:] + e2), "mid": (0, n // 2, e1[n // 2:] + e2), "before_last": (0, n - 1, e1[n - 1:] + e2),
             "last": (0, n, e2 + e3), "epoch2": (1, n // 3, e2[n // 3:] + e3)}
    if "workers" in name:
        cases = {k: cases[k] for k in ("first", "mid", "last")}
    jobs = {case: {"chain": name, "state": state_after(ds, name, before, k), "epochs": 2}
            for case, (before, k, _) in cases.items()}
    assert any("consumed" in job["state"] for job in jobs.values())  # a place after skips was saved
    got = run_child(tmp_path, damaged_path, jobs)
    for case, (_, _, want) in cases.items():
        flat = [b for epoch in got[case] for b in epoch]
        assert [b[0] for b in flat] == [b[0] for b in want], f"{name}/{case}: rows or batch boundaries differ"
        assert flat == want, f"{name}/{case}: same rows, different pixels or transformed values"


def test_state_is_small_json_and_follows_the_torchdata_convention(resume_ds):
    loader = resume.chain(resume_ds, "plain_tensors")
    n = len(loader)
    s0 = loader.state_dict()
    assert (s0["epoch"], s0["segments"]) == (1, [])  # never iterated: the first epoch from its start
    assert s0 == json.loads(json.dumps(s0)) and len(json.dumps(s0)) < 2000
    it = iter(loader)
    first = [resume.record(next(it)) for _ in range(3)]
    s3 = loader.state_dict()
    assert (s3["epoch"], s3["segments"]) == (1, [[1, 3]])
    rest = [resume.record(b) for b in it]  # ran to the end of the epoch
    s_end = loader.state_dict()
    assert (s_end["epoch"], s_end["segments"]) == (2, [])
    epoch2 = [resume.record(b) for b in loader]

    other = resume.chain(resume_ds, "plain_tensors")
    other.load_state_dict(s3)
    assert other.state_dict() == s3  # loaded, not iterated yet: the state is the loaded one
    assert [resume.record(b) for b in other] == rest and len(first) + len(rest) == n
    assert [resume.record(b) for b in other] == epoch2  # the next iter() is the next epoch

    # an abandoned iterator: the next iter() starts the next epoch, as torch's and torchdata's do
    again = resume.chain(resume_ds, "plain_tensors")
    again.load_state_dict(s_end)
    it = iter(again)
    assert resume.record(next(it)) == epoch2[0]
    assert again.state_dict()["segments"] == [[1, 1]]
    it2 = iter(again)
    assert again.state_dict()["epoch"] == 2  # the new iterator has not handed anything out yet...
    next(it2)
    assert (again.state_dict()["epoch"], again.state_dict()["segments"]) == (3, [[1, 1]])
    next(it)  # ... and the abandoned one no longer moves the place
    assert again.state_dict()["segments"] == [[1, 1]]
    for x in (loader, other, again):
        x.close()


def test_later_epochs_after_close_continue_the_numbering(resume_ds):
    """close() frees threads and memory; the loader's place survives it (epoch 2 is not epoch 1 again)."""
    loader = resume.chain(resume_ds, "plain_tensors")
    e1 = [resume.record(b) for b in loader]
    loader.close()
    e2 = [resume.record(b) for b in loader]
    assert e1 != e2 and loader.state_dict()["epoch"] == 3
    loader.close()


def test_resume_reads_only_chunks_with_pending_rows_and_decodes_only_them(resume_ds, monkeypatch):
    from deeplake_loader.pipeline.fetch import Decoder

    reader = resume_ds._reader("images")
    loads, decoded = [], []
    real_load, real_column = reader.load_chunk, Decoder.column
    monkeypatch.setattr(reader, "load_chunk", lambda name, **kw: loads.append(name) or real_load(name, **kw))
    monkeypatch.setattr(Decoder, "column", lambda self, col, values, rows, rng: (
        decoded.append((self, np.asarray(rows).tolist())) if col.name == "images" else None) or real_column(
        self, col, values, rows, rng))
    for shuffle in (False, True):
        def chain():
            c = resume_ds.dataloader().batch(resume.BATCH)
            return (c.shuffle(buffer_size=1) if shuffle else c).pytorch(tensors=["images", "row"])

        ref = chain()
        n = len(ref)
        k = n * 9 // 10
        full = [np.asarray(b["index"]).reshape(-1).tolist() for b in ref]
        pending = [r for b in full[k:] for r in b]
        first = chain()
        it = iter(first)
        for _ in range(k):
            next(it)
        saved = first.state_dict()
        it.close()  # joins its fetch and decode threads: nothing of it runs while we count
        ref.close(), first.close()
        loads.clear(), decoded.clear()
        again = chain()
        again.load_state_dict(saved)
        got = [np.asarray(b["index"]).reshape(-1).tolist() for b in again]
        mine = again._get_pipeline().decoder
        again.close()
        assert got == full[k:]
        rows = sorted(r for who, rs in decoded if who is mine for r in rs)
        assert rows == sorted(pending)  # nothing consumed is decoded again
        holding = {name for name, _, _ in reader.chunk_plan(np.asarray(pending, np.int64))}
        extra = set(loads) - holding
        # no chunk whose rows were all consumed is read (the shuffle's size estimate reads one chunk)
        assert len(extra) <= (1 if shuffle else 0), (shuffle, extra)
        assert len(set(loads)) < len(reader.enc.table) // 2


@pytest.fixture(scope="module")
def other_ds(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("other") / "ds")
    resume.build(path, rows=resume.ROWS)  # the same values, written again: other chunk ids
    return dl.load(path, read_only=True)


def test_a_state_of_another_loader_is_refused_naming_what_differs(resume_ds, other_ds, tmp_path):
    saved = state_after(resume_ds, "plain_tensors", 0, 2)

    def refused(loader, *words):
        with pytest.raises(StateMismatchError) as e:
            loader.load_state_dict(saved)
        for w in words:
            assert w in str(e.value), (w, str(e.value))
        return e.value

    def chain(ds, **kw):
        c = ds.dataloader().batch(kw.get("batch", resume.BATCH))
        if kw.get("shuffle", True):
            c = c.shuffle(buffer_size=kw.get("buffer", 1))
        if "query" in kw:
            c = c.query(kw["query"])
        if "offset" in kw:
            c = c.offset(kw["offset"])
        return c.pytorch(tensors=["images", "row"])

    chain(resume_ds).load_state_dict(saved)  # the same chain: accepted
    err = refused(chain(other_ds), "dataset", str(other_ds.path))
    assert len(err.components) == 1  # same version, lengths, rows and chain: only the dataset differs
    refused(chain(resume_ds, batch=16), "batch_size: saved 8, this loader 16")
    refused(chain(resume_ds, shuffle=False), "shuffle: saved True, this loader False")
    refused(chain(resume_ds, buffer=2), "buffer_size")
    refused(chain(resume_ds, query="select * where labels != 3"), "rows of the view / query")
    refused(chain(resume_ds, offset=3), "offset: saved 0, this loader 3")
    refused(resume_ds[:200].dataloader().batch(resume.BATCH).shuffle(buffer_size=1).pytorch(tensors=["images", "row"]),
            "rows of the view / query")
    refused(resume_ds.dataloader().batch(resume.BATCH).shuffle(buffer_size=1).pytorch(tensors=["images", "labels"]),
            "tensors")

    # another version: a copy of the dataset with a commit and more rows
    import shutil

    copy = str(tmp_path / "copy")
    shutil.copytree(resume_ds.path, copy)
    ds = dl.load(copy)
    ds.commit("before more rows")
    ds.extend({"images": [resume.image(i) for i in range(300, 305)], "labels": [0] * 5, "row": list(range(300, 305))})
    refused(chain(dl.load(copy, read_only=True)), "version (commit id)", "tensors and their lengths")
    old = dl.load(copy, read_only=True, commit=ds.version_state.chain[1])
    chain(old).load_state_dict(saved)  # the copy at the commit the state was saved on: accepted


def test_malformed_states_raise_clear_errors(resume_ds):
    loader = resume.chain(resume_ds, "plain_tensors")
    good = loader.state_dict()
    with pytest.raises(TypeError, match="expects the dict state_dict"):
        loader.load_state_dict([1, 2])
    for change, words in [({"format": "x"}, "not a deeplake_loader state"), ({"epoch": 0}, "'epoch' must be an int >= 1"),
                          ({"segments": [[0, 3]]}, "world size must be an int >= 1"),
                          ({"segments": [[1, -1]]}, "batches must be an int >= 0"),
                          ({"segments": [[1, 10_000]]}, "10000 batches of epoch 1 consumed, but an epoch of this loader has"),
                          ({"seed": "abc"}, "'seed' must be an integer"), ({"fingerprint": None}, "no 'fingerprint'")]:
        with pytest.raises(ValueError, match=words):
            loader.load_state_dict(dict(good, **change))
    loader.close()


# ------------------------------------------------------------------------------ elastic, in-process
@pytest.fixture(scope="module")
def rows_ds(tmp_path_factory):
    """103 rows of one int64 tensor holding the row id, 8 rows per chunk."""
    path = str(tmp_path_factory.mktemp("rows") / "ds")
    ds = dl.empty(path)
    with ds:
        ds.create_tensor("row", dtype="int64", max_chunk_size=64)
        ds.row.extend(list(range(103)))
    return dl.load(path, read_only=True)


def batches_of(loader, epoch, segments, rank, world):
    """What rank of world yields in ``epoch`` resumed after ``segments`` (one process plays every
    rank: the schedule takes rank and world explicitly)."""
    pipe = loader._get_pipeline()
    pipe.planned = loader_state.schedule(pipe, epoch, segments, rank, world)
    pipe.epoch = epoch - 1
    return [[int(s["row"][0]) for s in b] for b in pipe]  # .numpy(): a list of samples per batch


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 103),
       worlds=st.lists(st.integers(1, 4), min_size=2, max_size=3).filter(lambda w: all(a != b for a, b in zip(w, w[1:]))),
       fractions=st.lists(st.floats(0, 1), min_size=2, max_size=2), bs=st.integers(1, 9), shuffle=st.booleans(),
       offset=st.integers(0, 5), drop_last=st.booleans())
def test_elastic_resume_delivers_every_unconsumed_row_once(rows_ds, n, worlds, fractions, bs, shuffle, offset,
                                                           drop_last):
    view = rows_ds[:n]
    chain = view.dataloader().batch(bs, drop_last=drop_last).offset(offset)
    chain = (chain.shuffle(buffer_size=1) if shuffle else chain).numpy()
    segments, consumed = [], []
    for i, world in enumerate(worlds):
        last = i == len(worlds) - 1
        per_rank = [batches_of(chain, 1, segments, r, world) for r in range(world)]
        counts = {len(b) for b in per_rank}
        assert len(counts) == 1, f"ranks yield different batch counts {counts}"  # DDP lockstep
        assert all(len(x) <= bs for b in per_rank for x in b) and all(len(x) for b in per_rank for x in b)
        if i:
            delivered = [r for b in per_rank for x in b for r in x]
            left = sorted(set(range(n)) - set(consumed))
            assert not set(delivered) & set(consumed), "a consumed row was delivered again"
            if drop_last:
                assert set(delivered) <= set(left)
                assert len(left) - len(set(delivered)) < world * (bs + 1)
            else:
                assert sorted(set(delivered)) == left, "a row not yet consumed was not delivered"
                dup = len(delivered) - len(set(delivered))
                assert dup == 0 or (dup < world and (bs == 1 or len(left) < world)), dup
        if last:
            break
        (batches,) = counts
        k = int(round(fractions[min(i, 1)] * batches))
        if k == batches and batches:
            k -= 1  # a finished epoch is not resumed mid-way
        consumed += [r for b in per_rank for x in b[:k] for r in x]
        segments = segments + [[world, k]]
    chain.close()


@pytest.mark.parametrize("shuffle", [False, True])
def test_same_world_resume_on_every_rank_equals_the_uninterrupted_run(rows_ds, shuffle):
    chain = rows_ds.dataloader().batch(4).offset(3)
    chain = (chain.shuffle(buffer_size=1) if shuffle else chain).numpy()
    for rank in range(3):
        full = batches_of(chain, 2, [], rank, 3)
        for k in (0, 1, 5, len(full)):
            assert batches_of(chain, 2, [[3, k]], rank, 3) == full[k:]
    chain.close()


def test_batch_sizes_spread():
    for n in range(1, 40):
        for bs in range(1, 9):
            for batches in range(-(-n // bs), n + 1):
                sizes = list(loader_state.BatchSizes.spread(n, batches, bs).after(0))
                assert sum(sizes) == n and len(sizes) == batches and all(1 <= s <= bs for s in sizes)
                assert sizes == sorted(sizes, reverse=True)  # full batches first
    with pytest.raises(ValueError, match="cannot put 3 rows in 4 batches"):
        loader_state.BatchSizes.spread(3, 4, 2)


@pytest.mark.parametrize("plan", ["sample_by", "sample_by_no_replace", "jumping_view"])
def test_resume_at_every_batch_of_plans_that_return_to_a_chunk(tmp_path, seeded, plan):
    """Plans that read one chunk in several early steps (sample_by without shuffle draws rows of
    every chunk all along; a view's rows jump back and forth between chunks): a resume after any
    batch yields exactly the rest of the uninterrupted epoch."""
    ds = dl.empty(str(tmp_path / "ds"))
    with ds:
        ds.create_tensor("ids", dtype="int64", max_chunk_size=200)
        ds.extend({"ids": [np.array([i] * 4, np.int64) for i in range(60)]})
    ds = dl.load(str(tmp_path / "ds"), read_only=True)
    assert len(ds._reader("ids").enc.table) > 10

    def make():
        seeded(3)
        if plan == "jumping_view":
            return ds[[0, 50, 1, 51, 2, 52, 3, 53, 4, 54, 5, 55] * 3].dataloader().batch(2).pytorch()
        return ds.dataloader().sample_by(np.ones(60), replace=plan == "sample_by").batch(4).pytorch()

    def rows(b):
        r = b["index"].reshape(-1).tolist()
        assert b["ids"][:, 0].tolist() == r
        return r

    full = [rows(b) for b in make()]
    for stop in range(1, len(full), 1 if plan == "sample_by" else 3):
        loader = make()
        it = iter(loader)
        for _ in range(stop):
            next(it)
        state = loader.state_dict()
        again = make()
        again.load_state_dict(state)
        assert [rows(b) for b in again] == full[stop:], f"resumed after batch {stop}"
