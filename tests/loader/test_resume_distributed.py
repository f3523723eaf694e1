"""Resuming with real torch.distributed ranks (gloo on loopback), no seed set anywhere (the ranks
share rank 0's root at their first iteration, and the state carries it):

* 2 ranks save mid-epoch; 2 ranks resume: each rank's rest of the epoch and next epoch equal the
  uninterrupted run's;
* 2 ranks save, 3 resume (elastic): across the 3 ranks every row not consumed before the save comes
  exactly once, none consumed comes again, every rank yields the same number of batches, and the
  next epoch is sharded for 3;
* those 3 save again mid-remainder and 2 resume (3 -> 2): the same, over both saves.
"""

import json
import textwrap

import pytest

import deeplake_loader as dl
from deeplake_loader.pipeline.plan import rank_slice
from tests.common.distributed import run_ranks

pytestmark = pytest.mark.distributed

N, BATCH, K1, K2 = 103, 4, 5, 3

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import torch.distributed as dist
    import deeplake_loader as dl

    rank, world, job = int(sys.argv[1]), int(sys.argv[2]), json.loads(open(sys.argv[3]).read())
    dist.init_process_group("gloo", rank=rank, world_size=world)
    ds = dl.load(job["path"], read_only=True)

    def chain():
        return ds.dataloader().batch(%d).offset(5).shuffle(buffer_size=1).pytorch(tensors=["row"], distributed=True)

    def rows(b):
        r = np.asarray(b["row"]).reshape(-1).tolist()
        assert r == np.asarray(b["index"]).reshape(-1).tolist()
        return r

    def epochs(loader, n):
        return [[rows(b) for b in loader] for _ in range(n)]

    def save_after(loader, k):
        it = iter(loader)
        taken = [rows(next(it)) for _ in range(k)]
        return taken, json.loads(json.dumps(loader.state_dict()))

    out = {"len": len(chain())}
    if job["mode"] == "save":
        out["epochs"] = epochs(chain(), 2)
        out["taken"], out["state"] = save_after(chain(), job["k"])
    else:
        for name, state in job["states"].items():
            loader = chain()
            loader.load_state_dict(state)
            out[name] = epochs(loader, 2)
        if job.get("k"):
            loader = chain()
            loader.load_state_dict(job["states"]["first"])
            out["taken"], out["state"] = save_after(loader, job["k"])
    dist.barrier()
    dist.destroy_process_group()
    print(json.dumps(out))
""" % BATCH)


@pytest.fixture(scope="module")
def rows_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("dist_resume") / "ds")
    ds = dl.empty(path)
    with ds:
        ds.create_tensor("row", dtype="int64", max_chunk_size=64)
        ds.row.extend(list(range(N)))
    return path


def launch(tmp_path, world, job, tag):
    script = tmp_path / "rank.py"
    script.write_text(SCRIPT)
    spec = tmp_path / f"{tag}.json"
    spec.write_text(json.dumps(job))
    return run_ranks(script, world, spec, timeout=300)


def flat(batches):
    return [r for b in batches for r in b]


def check_remainder(outs, name, consumed, world):
    """Across ranks: the rest of the epoch delivers every row not consumed exactly once, none
    consumed; equal batch counts; the next epoch is sharded for ``world``."""
    rest = [o[name][0] for o in outs]
    assert len({len(r) for r in rest}) == 1, f"ranks yield different batch counts: {[len(r) for r in rest]}"
    assert all(1 <= len(b) <= BATCH for r in rest for b in r)
    delivered = [x for r in rest for x in flat(r)]
    left = sorted(set(range(N)) - set(consumed))
    assert sorted(delivered) == left, "not every unconsumed row exactly once (or a consumed row again)"
    per = rank_slice(N, 0, world)[2]
    for rank, o in enumerate(outs):
        start, stop, _ = rank_slice(N, rank, world)
        want = list(range(start, stop)) + list(range(per - (stop - start)))
        assert sorted(flat(o[name][1])) == sorted(want)  # epoch 2: rank's slice of the new world
        assert len(o[name][1]) == outs[0]["len"] == -(-per // BATCH)


def test_elastic_and_same_world_resume_with_gloo_ranks(tmp_path, rows_path):
    saved = launch(tmp_path, 2, {"path": rows_path, "mode": "save", "k": K1}, "save")
    for o in saved:
        assert o["taken"] == o["epochs"][0][:K1]  # the saver saw what the uninterrupted run saw
    state1 = saved[0]["state"]  # Lightning keeps rank 0's
    assert state1["segments"] == [[2, K1]] and state1["world"] == 2
    consumed1 = [x for o in saved for x in flat(o["taken"])]

    three = launch(tmp_path, 3, {"path": rows_path, "mode": "resume", "states": {"first": state1}, "k": K2}, "three")
    check_remainder(three, "first", consumed1, 3)
    for o in three:
        assert o["taken"] == o["first"][0][:K2]
    state2 = three[0]["state"]
    assert state2["segments"] == [[2, K1], [3, K2]]
    consumed2 = consumed1 + [x for o in three for x in flat(o["taken"])]

    two = launch(tmp_path, 2, {"path": rows_path, "mode": "resume", "states": {"first": state1, "second": state2}},
                 "two")
    check_remainder(two, "second", consumed2, 2)
    for o, s in zip(two, saved):  # the same world: exactly the uninterrupted run, on every rank
        assert o["first"][0] == s["epochs"][0][K1:] and o["first"][1] == s["epochs"][1]
