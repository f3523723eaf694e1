"""The dataset API scripts call between training runs, against REAL deeplake 3.9.52:
``create_tensor(..., exist_ok=True)``, ``create_group``, ``checkout`` (new branch, existing branch,
commit id, a write at a commit), ``commit``, ``deepcopy`` (whole, and ``tensors=``).

The same PLAYBOOK source runs in the deeplake venv and here. Both directions are checked: what we
write with it, deeplake reads back as we do (every branch, every commit, groups, values); what
deeplake writes with it, we read back as deeplake does.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.common import dl3

pytestmark = pytest.mark.dl3

# Executed by deeplake 3.9.52 and by us (`dl` is the package): a playbook and the snapshot of a
# dataset's whole history.
SHARED = r'''
import numpy as np


def playbook(dl, root):
    """What a training project does between runs; returns the ids it needs later."""
    ds = dl.empty(root + "/ds", overwrite=True)
    ds.create_tensor("labels", htype="class_label", class_names=["cat", "dog"])
    ds.create_group("extra")
    ds["extra"].create_tensor("score", dtype="float32")
    ds.create_tensor("extra/deep/flag", dtype="int32")
    ds.create_group("empty/inner")
    ds.extend({"labels": [0, 1, 1, 0], "extra/score": np.arange(4, dtype=np.float32) / 2,
               "extra/deep/flag": np.arange(4, dtype=np.int32)})
    again = ds.create_tensor("labels", htype="class_label", exist_ok=True)  # a re-run: nothing changes
    assert len(again) == 4
    c1 = ds.commit("four rows")
    ds.checkout("relabel", create=True)
    ds.labels.append(1)
    ds["extra/score"].append(np.float32(9))
    ds["extra/deep/flag"].append(np.int32(9))
    c2 = ds.commit("relabel one")
    ds.checkout("main")
    ds.extend({"labels": [0], "extra/score": [np.float32(-1)], "extra/deep/flag": [np.int32(-1)]})
    ds.checkout("dirty", create=True)  # main's head has changes: committed first, then branched
    ds.labels.append(0)
    ds["extra/score"].append(np.float32(7))
    ds["extra/deep/flag"].append(np.int32(7))
    ds.checkout(c1)
    ds.labels.append(1)  # a write at a commit: a new branch auto_<id> there
    ds["extra/score"].append(np.float32(3))
    ds["extra/deep/flag"].append(np.int32(3))
    auto = ds.branch
    ds.checkout("main")
    ds.flush()
    dl.deepcopy(root + "/ds", root + "/full", progressbar=False)
    dl.deepcopy(ds, root + "/part", tensors=["extra"], progressbar=False, overwrite=True)
    return {"c1": c1, "c2": c2, "auto": auto}


def _groups(ds):
    meta = ds.meta
    return sorted(meta.groups if hasattr(meta, "groups") else meta["groups"])


def _values(ds):
    out = {}
    for name in sorted(ds.tensors):
        t = ds[name]
        out[name] = [np.asarray(t[i].numpy()).tolist() for i in range(len(t))]
    return out


def snapshot(dl, path):
    """Every branch head's and every commit's tensors and values, the groups, the branches."""
    ds = dl.load(path, read_only=True)
    out = {"branches": sorted(ds.branches), "groups": _groups(ds), "heads": {}, "commits": {}}
    commits = set()
    for b in sorted(ds.branches):
        ds.checkout(b)
        out["heads"][b] = {"values": _values(ds), "groups": _groups(ds), "commit_id": ds.commit_id}
        commits.update(c["commit"] for c in ds.commits)
    for c in sorted(commits):
        ds.checkout(c)
        out["commits"][c] = {"values": _values(ds), "branch": ds.branch,
                             "message": next(x["message"] for x in ds.commits if x["commit"] == c)}
    ds.checkout("main")
    return out
'''

_DL3 = r'''
import deeplake
exec(open(ARGS[0]).read())
mode, root = ARGS[1], ARGS[2]
if mode == "write":
    ids = playbook(deeplake, root)
    emit({"ids": ids, "ds": snapshot(deeplake, root + "/ds"), "full": snapshot(deeplake, root + "/full"),
          "part": snapshot(deeplake, root + "/part")})
else:
    emit({k: snapshot(deeplake, root + "/" + k) for k in ("ds", "full", "part")})
'''


@pytest.fixture(scope="module")
def shared():
    ns: dict = {}
    exec(SHARED, ns)  # noqa: S102 - the same source runs in the deeplake venv
    return ns


def _run(tmp_path, mode, root):
    script = tmp_path / "shared.py"
    script.write_text(SHARED)
    try:
        return dl3.run_dl3(_DL3, script, mode, root, timeout=600)
    except dl3.DL3Unavailable as e:
        dl3.skip_or_fail(str(e))


def test_what_we_write_deeplake_reads_as_we_do(tmp_path, shared, dl3_python):
    import deeplake_loader as dl

    root = str(tmp_path / "ours")
    ids = shared["playbook"](dl, root)
    ours = {k: shared["snapshot"](dl, f"{root}/{k}") for k in ("ds", "full", "part")}
    theirs = _run(tmp_path, "read", root)
    assert theirs == json.loads(json.dumps(ours))
    ds = ours["ds"]
    assert ds["branches"] == sorted(["main", "relabel", "dirty", ids["auto"]]) and ids["auto"].startswith("auto_")
    assert ds["groups"] == ["empty", "empty/inner", "extra", "extra/deep"]
    assert ds["heads"]["main"]["values"]["labels"] == [[0], [1], [1], [0], [0]]
    assert ds["heads"]["relabel"]["values"]["labels"] == [[0], [1], [1], [0], [1]]
    assert ds["heads"]["dirty"]["values"]["labels"] == [[0], [1], [1], [0], [0], [0]]
    assert ds["heads"][ids["auto"]]["values"]["extra/score"] == [[0], [0.5], [1], [1.5], [3]]
    assert ds["commits"][ids["c1"]]["values"]["labels"] == [[0], [1], [1], [0]]
    auto_commit = [c for c, v in ds["commits"].items() if v["message"] == "auto commit before checkout to dirty"]
    assert len(auto_commit) == 1 and ds["heads"]["dirty"]["commit_id"] == auto_commit[0]
    assert ours["full"] == ds
    assert sorted(ours["part"]["heads"]["main"]["values"]) == ["extra/deep/flag", "extra/score"]
    assert ours["part"]["groups"] == ["extra", "extra/deep"]


def test_what_deeplake_writes_we_read_as_deeplake_does(tmp_path, shared, dl3_python):
    import deeplake_loader as dl

    root = str(tmp_path / "theirs")
    theirs = _run(tmp_path, "write", root)
    for k in ("ds", "full", "part"):
        assert shared["snapshot"](dl, f"{root}/{k}") == theirs[k], k
    assert theirs["ds"]["heads"][theirs["ids"]["auto"]]["values"]["labels"] == [[0], [1], [1], [0], [1]]


def test_we_continue_deeplakes_branches_and_deeplake_ours(tmp_path, shared, dl3_python):
    """A branch deeplake made, checked out, written and committed by us; then by deeplake again."""
    import deeplake_loader as dl

    root = str(tmp_path / "mixed")
    theirs = _run(tmp_path, "write", root)
    ds = dl.load(f"{root}/ds")
    ds.checkout("relabel")
    ds.labels.append(0)
    ours_commit = ds.commit("ours on relabel")
    ds.checkout("ours", create=True)
    ds["extra/score"].append(np.float32(5))
    script = r'''
import deeplake
ds = deeplake.load(ARGS[0], verbose=False)
ds.checkout("relabel")
out = {"relabel": ds.labels.numpy().reshape(-1).tolist(), "commits": [c["commit"] for c in ds.commits]}
ds.checkout("ours")
out["ours"] = ds["extra/score"].numpy().reshape(-1).tolist()
ds["extra/score"].append(6.0)
ds.commit("deeplake after us")
emit(out)
'''
    out = dl3.run_dl3(script, f"{root}/ds")
    assert out["relabel"] == [0, 1, 1, 0, 1, 0] and ours_commit in out["commits"]
    assert out["ours"] == [0, 0.5, 1, 1.5, 9, 5]
    again = dl.load(f"{root}/ds", read_only=True, branch="ours")
    assert again["extra/score"].numpy().reshape(-1).tolist() == [0, 0.5, 1, 1.5, 9, 5, 6]
    assert theirs["ids"]["c2"] in [c["commit"] for c in again.commits]


# ---- create_tensor(exist_ok=...) and create_group: the same calls, the same outcomes -------------

CALLS = r'''
import numpy as np


def calls(dl, path):
    ds = dl.empty(path, overwrite=True)
    ds.create_tensor("labels", htype="class_label", class_names=["a", "b"])
    ds.create_tensor("img", htype="image", sample_compression="jpeg")
    ds.create_tensor("vec", dtype="float32")
    ds.create_group("g")
    tries = [
        ("labels", dict(htype="class_label", exist_ok=True)),
        ("labels", dict(htype="class_label", class_names=["x"], exist_ok=True)),
        ("labels", dict(htype="class_label", dtype="uint32", exist_ok=True)),
        ("labels", dict(htype="class_label", dtype="int32", exist_ok=True)),
        ("labels", dict(exist_ok=True)),
        ("labels", dict(htype="class_label", chunk_compression="lz4", exist_ok=True)),
        ("labels", dict(htype="class_label")),
        ("img", dict(htype="image", sample_compression="jpeg", exist_ok=True)),
        ("img", dict(htype="image", sample_compression="jpg", exist_ok=True)),
        ("img", dict(htype="image", sample_compression="png", exist_ok=True)),
        ("img", dict(htype="image", exist_ok=True)),
        ("vec", dict(dtype="float32", exist_ok=True)),
        ("vec", dict(dtype="float64", exist_ok=True)),
        ("g", dict(exist_ok=True)),
        ("append", dict()),
    ]
    out = []
    for name, kw in tries:
        try:
            t = ds.create_tensor(name, **kw)
            out.append(["ok", len(t), list(t.info.class_names) if "class" in name or name == "labels" else None])
        except Exception as e:  # noqa: BLE001 - compared
            out.append([type(e).__name__, str(e).split(".")[0]])
    for name, kw in [("g", {}), ("g", {"exist_ok": True}), ("labels", {}), ("h/i", {}), ("append", {})]:
        try:
            grp = ds.create_group(name, **kw)
            out.append(["ok", sorted(grp.tensors)])
        except Exception as e:  # noqa: BLE001 - compared
            out.append([type(e).__name__, str(e).split(".")[0]])
    meta = ds.meta
    out.append(sorted(meta.groups if hasattr(meta, "groups") else meta["groups"]))
    return out
'''


def test_create_tensor_exist_ok_and_create_group_answer_as_deeplake(tmp_path):
    import deeplake_loader as dl

    script = tmp_path / "calls.py"
    script.write_text(CALLS)
    try:
        theirs = dl3.run_dl3("exec(open(ARGS[0]).read())\nimport deeplake\nemit(calls(deeplake, ARGS[1]))",
                             script, tmp_path / "theirs")
    except dl3.DL3Unavailable as e:
        dl3.skip_or_fail(str(e))
    ns: dict = {}
    exec(CALLS, ns)  # noqa: S102
    ours = json.loads(json.dumps(ns["calls"](dl, str(tmp_path / "ours"))))
    assert ours == theirs


def test_exist_ok_after_appends_repeats_where_deeplake_refuses(tmp_path):
    """Deliberate difference: deeplake compares a dtype the call leaves out with the one the first
    append filled in, so re-running `create_tensor("img", htype="image", sample_compression="jpeg",
    exist_ok=True)` on a tensor with data raises; ours returns the tensor (a dtype that IS given
    is compared, as deeplake does)."""
    import deeplake_loader as dl

    path = str(tmp_path / "ds")
    script = r'''
import deeplake, numpy as np
ds = deeplake.empty(ARGS[0], overwrite=True, verbose=False)
ds.create_tensor("img", htype="image", sample_compression="jpeg")
ds.create_tensor("x")
ds.append({"img": np.zeros((4, 4, 3), np.uint8), "x": np.zeros(2, np.int16)})
out = []
for name, kw in [("img", dict(htype="image", sample_compression="jpeg")), ("x", {})]:
    try:
        ds.create_tensor(name, exist_ok=True, **kw)
        out.append("ok")
    except ValueError as e:
        out.append(str(e)[:60])
emit(out)
'''
    try:
        theirs = dl3.run_dl3(script, path)
    except dl3.DL3Unavailable as e:
        dl3.skip_or_fail(str(e))
    assert all(t.startswith("Tensor ") and "already exists with different configuration" in t for t in theirs)
    ds = dl.load(path)
    assert len(ds.create_tensor("img", htype="image", sample_compression="jpeg", exist_ok=True)) == 1
    assert len(ds.create_tensor("x", exist_ok=True)) == 1
    with pytest.raises(ValueError, match="already exists with different configuration"):
        ds.create_tensor("x", dtype="float32", exist_ok=True)


def test_checkout_errors_are_deeplakes(tmp_path):
    import deeplake_loader as dl
    from deeplake_loader.util.exceptions import CheckoutError, ReadOnlyModeError

    ds = dl.empty(str(tmp_path / "ds"))
    ds.create_tensor("x")
    with pytest.raises(CheckoutError, match="Address nope not found"):
        ds.checkout("nope")
    with pytest.raises(CheckoutError, match="Can't create new branch, 'main' already exists"):
        ds.checkout("main", create=True)
    with pytest.raises(CheckoutError, match="filtered dataset view"):
        ds[0:1].checkout("main")
    with pytest.raises(ReadOnlyModeError):
        dl.load(str(tmp_path / "ds"), read_only=True).checkout("new", create=True)
