"""Our commit(): copy-on-write heads that deeplake 3.9.52 reads at the head and at each commit, and
that it appends to and commits on after us."""

import numpy as np
import pytest

from tests.common import dl3

pytestmark = pytest.mark.dl3

SCRIPT = """
import deeplake
ds = deeplake.load(ARGS[0], verbose=False)
out = {"head": {"x": [ds.x[i].numpy().tolist() for i in range(len(ds.x))],
                "t": [ds.t[i].data()["value"] for i in range(len(ds.t))]},
       "commits": [c["commit"] for c in ds.commits]}
for cid in out["commits"]:
    ds.checkout(cid)
    out[cid] = {"x": len(ds.x), "t": len(ds.t)}
ds.checkout("main")
ds.x.append(ds.x[0].numpy())
ds.t.append("from deeplake")
out["deeplake_commit"] = ds.commit("deeplake after us")
out["final"] = {"x": len(ds.x), "t": [ds.t[i].data()["value"] for i in range(len(ds.t))]}
emit(out)
"""


def test_commit_then_append_is_read_by_deeplake(tmp_path, dl3_python):
    import deeplake_loader as dl

    path = str(tmp_path / "ds")
    ds = dl.empty(path)
    with ds:
        ds.create_tensor("x", dtype="int32", max_chunk_size=400)
        ds.create_tensor("t", htype="text")
        ds.extend({"x": [np.full(10, i, np.int32) for i in range(12)], "t": [f"r{i}" for i in range(12)]})
    first = ds.commit("first twelve")
    with ds:
        ds.extend({"x": [np.full(10, i, np.int32) for i in range(12, 15)], "t": [f"r{i}" for i in range(12, 15)]})
    second = ds.commit("three more")
    ds.t.append("after the second commit")
    ds.x.append(np.full(10, 99, np.int32))

    ours = dl.load(path, read_only=True)
    assert len(ours) == 16 and ours.t[15].data()["value"] == "after the second commit"
    assert len(dl.load(path, read_only=True, commit=first)) == 12
    assert len(dl.load(path, read_only=True, commit=second)) == 15

    out = dl3.run_dl3(SCRIPT, path)
    assert out["head"]["x"] == [[i] * 10 for i in range(15)] + [[99] * 10]
    assert out["head"]["t"] == [f"r{i}" for i in range(15)] + ["after the second commit"]
    assert {first, second} <= set(out["commits"])
    assert out[first] == {"x": 12, "t": 12} and out[second] == {"x": 15, "t": 15}
    assert out["final"]["x"] == 17 and out["final"]["t"][-1] == "from deeplake"
    # and we read what deeplake committed on top of ours
    again = dl.load(path, read_only=True)
    assert len(again) == 17 and again.t[16].data()["value"] == "from deeplake"
    assert again.x[16].numpy().tolist() == [0] * 10


def test_writes_to_a_view_or_a_read_only_dataset_are_refused(tmp_path):
    """(A write at an old commit goes to a new branch: tests/integration/test_versions_api.py.)"""
    import deeplake_loader as dl
    from deeplake_loader.errors import ReadOnlyError

    path = str(tmp_path / "ds")
    ds = dl.empty(path)
    ds.create_tensor("x", dtype="int32")
    ds.x.extend([1, 2, 3])
    ds.commit("c")
    with pytest.raises(ReadOnlyError, match="view"):
        ds[0:2].x.append(5)
    with pytest.raises(ReadOnlyError, match="read-only"):
        dl.load(path, read_only=True).x.append(6)
