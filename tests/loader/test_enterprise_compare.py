"""The ``ds.dataloader()`` chain against REAL deeplake 3.9.52's C++ loader (libdeeplake 0.0.164),
case by case on a dataset deeplake writes (tests/common/enterprise.py): batch structure (dict or
list, key order, whether a dict iterates its values), types, dtypes, shapes and values.

Where we keep a deliberate difference, the test says which (shared/spec/LOADER_SEMANTICS.md says
why):
* **index last**: deeplake's C++ loader puts ``index`` first in batches and samples, ours last (so
  ``for images, labels, index in loader`` follows ``tensors=``); its batches are compared with
  ``index`` moved last;
* **errors at the call**: a bad ``decode_method`` is refused by ``.pytorch(...)`` itself (deeplake:
  at the first ``iter()``), with deeplake's class and text;
* **batch(0) refused** (deeplake yields batches of one);
* **an empty tensor** is deeplake's ``EmptyTensorError`` naming it (deeplake's C++ loader fails
  with an ``IndexError`` from inside it);
* **equal DDP batches**: every rank yields the same number of batches (deeplake's short rank
  yields one fewer, and DDP hangs waiting for it);
* **a transform's tuple that starts with a str** is collated column by column (deeplake's collate
  keeps only each sample's first item then: the other columns are silently dropped);
* **len() with tensors=[]**: deeplake's ``len(loader)`` is 0 (it counts the rows of ``ds[[]]``)
  while it yields every batch; ours is the batches it yields.

Issue 21's "Batch and sample shapes" (``.numpy()`` batches as lists of samples, samples as
IterableOrderedDict, what a collate_fn receives and that its result is untouched, a transform's
dict as a plain dict batch, ``tensors=[]``, columns of strings as torch's collate leaves them) are
compared like the rest.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.common import dl3
from tests.common import enterprise as E

pytestmark = pytest.mark.dl3
torch = pytest.importorskip("torch")

def fn(name):
    return {"$fn": name}


T6 = ["images", "labels", "caption", "vec", "big", "score"]
B4 = ["batch", [4], {}]
CASES = {
    # the same batches, index aside
    "plain": {"steps": [B4, ["pytorch", [], {"tensors": T6}]]},
    "batch_of_one": {"steps": [["pytorch", [], {"tensors": ["labels", "caption"]}]]},
    "no_index": {"steps": [B4, ["pytorch", [], {"tensors": ["labels", "vec"], "return_index": False}]]},
    "t_tuple": {"steps": [["transform", [fn("t_tuple")], {}], ["batch", [3], {}], ["pytorch", [], {"tensors": ["labels"]}]]},
    "t_list": {"steps": [["transform", [fn("t_list")], {}], ["batch", [3], {}], ["pytorch", [], {"tensors": ["vec"]}]]},
    "t_kwargs": {"steps": [["transform", [fn("t_kw")], {"k": 100}], ["batch", [3], {}],
                           ["pytorch", [], {"tensors": ["labels"]}]]},
    "t_dtypes": {"steps": [["transform", [fn("t_dtypes")], {}], ["batch", [5], {}], ["pytorch", [], {"tensors": T6}]]},
    "dict_transform": {"steps": [["transform", [{"vec": fn("t_vec"), "labels": None, "index": None}], {}],
                                 ["batch", [3], {}], ["pytorch", [], {}]]},
    "dict_index_first": {"steps": [["transform", [{"index": None, "labels": None}], {}], B4, ["pytorch", [], {}]]},
    "tobytes": {"steps": [["batch", [2], {}], ["pytorch", [], {"tensors": ["images", "jpg", "labels"], "decode_method":
                                                              {"images": "tobytes", "jpg": "tobytes"}}]]},
    "pil": {"steps": [["transform", [fn("t_pil")], {}], ["batch", [2], {}],
                      ["pytorch", [], {"tensors": ["images"], "decode_method": {"images": "pil"}}]]},
    "offset": {"clause": "where labels != 1", "steps": [B4, ["offset", [3], {}], ["pytorch", [], {"tensors": ["labels"]}]]},
    "query_order": {"clause": "where labels != 1 order by score desc",
                    "steps": [B4, ["pytorch", [], {"tensors": ["labels", "score"]}]]},
    "drop_last": {"steps": [["batch", [3], {"drop_last": True}], ["pytorch", [], {"tensors": ["labels"]}]]},
    "collate_default": {"probe": ["collate_fn"], "iterate": False, "steps": [B4, ["pytorch", [], {"tensors": ["labels"]}]]},
    "collate_numpy": {"probe": ["collate_fn"], "iterate": False, "steps": [B4, ["numpy", [], {"tensors": ["labels"]}]]},
    "err_index": {"steps": [["pytorch", [], {"tensors": ["index"]}]]},
    "err_distributed": {"steps": [["batch", [2], {}], ["pytorch", [], {"distributed": True}]]},
    # the lead's part of issue 21
    "data": {"steps": [["batch", [2], {}], ["pytorch", [], {"tensors": ["labels", "caption"],
                                                            "decode_method": {"labels": "data", "caption": "data"}}]]},
    "t_dict": {"steps": [["transform", [fn("t_dict")], {}], ["batch", [3], {}],
                         ["pytorch", [], {"tensors": ["labels", "vec"]}]]},
    "t_container": {"steps": [["transform", [fn("t_container")], {}], ["batch", [5], {}],
                              ["pytorch", [], {"tensors": ["labels", "vec"]}]]},
    "user_collate": {"probe": ["collate_fn"], "steps": [B4, ["pytorch", [], {"tensors": ["labels", "caption"],
                                                                             "collate_fn": fn("c_seen")}]]},
    "numpy": {"steps": [B4, ["numpy", [], {"tensors": ["labels", "caption", "vec"]}]]},
    "tensors_empty_list": {"steps": [B4, ["pytorch", [], {"tensors": []}]]},
    "str_column": {"steps": [["transform", [fn("t_str_second")], {}], B4, ["pytorch", [], {"tensors": ["caption"]}]]},
    # order and sampling
    "sample_replace_false": {"clause": "sample by max_weight(labels == 1: 10, labels == 2: 1) replace false",
                             "steps": [B4, ["pytorch", [], {"tensors": ["labels"]}]]},
    "shuffle": {"steps": [B4, ["shuffle", [], {}], ["pytorch", [], {"tensors": ["images", "labels"]}]]},
    # errors
    "err_decode_unknown": {"steps": [["batch", [2], {}], ["pytorch", [], {"tensors": ["images"],
                                                                          "decode_method": {"images": "foo"}}]]},
    "err_decode_pil_labels": {"steps": [["batch", [2], {}], ["pytorch", [], {"tensors": ["labels"],
                                                                             "decode_method": {"labels": "pil"}}]]},
    "err_decode_not_selected": {"steps": [["batch", [2], {}], ["pytorch", [], {"tensors": ["labels"],
                                                                               "decode_method": {"caption": "numpy"}}]]},
    "err_tensors_twice_transform_first": {"steps": [["transform", [{"labels": None}], {}],
                                                    ["pytorch", [], {"tensors": ["labels"]}]]},
    "err_tensors_twice_pytorch_first": {"steps": [["pytorch", [], {"tensors": ["labels"]}],
                                                  ["transform", [{"labels": None}], {}]]},
    "err_2d_weights": {"steps": [["sample_by", [{"$array": [[1.0]] * E.N}], {}]]},
    "err_empty": {"dataset": "with_empty", "steps": [["batch", [2], {}], ["pytorch", [], {"tensors": ["x", "empty"]}]]},
    "err_query_syntax": {"clause": "where labels = = 1", "steps": [], "iterate": False},
    "err_query_tensor": {"clause": "where nope == 1", "steps": [], "iterate": False},
    "err_query_class": {"clause": "where labels == 'class_99'", "steps": [], "iterate": False},
    "batch0": {"steps": [["batch", [0], {}], ["pytorch", [], {"tensors": ["labels"]}]]},
    "t_str_first": {"steps": [["transform", [fn("t_str_first")], {}], ["batch", [4], {}],
                              ["pytorch", [], {"tensors": ["caption"]}]]},
}
# ours only: the chain's sample_by (deeplake's chain ignores sample_by over the query view it can
# iterate; its query language's `sample by` is the reference)
W = [10.0 if i % 4 == 1 else 1.0 if i % 4 == 2 else 0.0 for i in range(E.N)]
OURS_ONLY = {"chain_sample_replace_false": {"steps": [["sample_by", [W], {"replace": False}], B4,
                                                      ["pytorch", [], {"tensors": ["labels"]}]]}}

SAME = ["plain", "batch_of_one", "no_index", "t_tuple", "t_list", "t_kwargs", "t_dtypes", "dict_transform",
        "dict_index_first", "tobytes", "pil", "offset", "query_order", "drop_last", "collate_default", "collate_numpy",
        "err_index", "err_distributed", "data", "str_column", "t_dict", "t_container", "user_collate", "numpy"]
DICT_TRANSFORMS = {"dict_transform", "dict_index_first"}  # keys in the dict's order on both sides


@pytest.fixture(scope="module")
def datasets(dl3_python, tmp_path_factory):
    try:
        return E.write_datasets(tmp_path_factory.mktemp("enterprise"))
    except dl3.DL3Unavailable as e:
        dl3.skip_or_fail(str(e))


@pytest.fixture(scope="module")
def theirs(datasets):
    return E.run_enterprise(CASES, datasets)


@pytest.fixture(scope="module")
def ours(datasets):
    return json.loads(json.dumps(E.run_ours({**CASES, **OURS_ONLY}, datasets)))


def _result(results, name):
    r = results[name]
    assert "crashed" not in r, f"deeplake's C++ loader crashed on {name} {r['crashed']} times:\n{r['stderr']}"
    return r


def _index_last(x):
    """deeplake's batch / sample description with ``index`` moved last (the deliberate difference)."""
    if isinstance(x, dict):
        if "dict" in x:
            items = [[k, _index_last(v)] for k, v in x["dict"]]
            items = [i for i in items if i[0] != "index"] + [i for i in items if i[0] == "index"]
            return {**x, "dict": items}
        if "str" in x and re.match(r"^(\w+\|[^|]*\|)?index:", x["str"]):
            head, _, body = x["str"].rpartition("|")
            parts = body.split(";")
            parts = [p for p in parts if not p.startswith("index:")] + [p for p in parts if p.startswith("index:")]
            return {"str": (head + "|" if head else "") + ";".join(parts)}
        return {k: _index_last(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_index_last(v) for v in x]
    return x


def _rows(result):
    out = []
    for batch in result["batches"]:
        index = dict(batch["dict"])["index"]
        out += [r[0] for r in index["v"]]
    return out


@pytest.mark.parametrize("name", SAME)
def test_same_batches_with_index_last(theirs, ours, name):
    want = _result(theirs, name)
    want = want if name in DICT_TRANSFORMS else _index_last(want)
    got = ours[name]
    assert got.keys() == want.keys(), (got, want)
    for key in got:
        if key != "batches":
            assert got[key] == want[key], key
    assert len(got.get("batches", [])) == len(want.get("batches", []))
    for i, (g, w) in enumerate(zip(got.get("batches", []), want.get("batches", []))):
        assert g == w, f"{name}: batch {i} differs\n ours:     {json.dumps(g)[:1500]}\n deeplake: {json.dumps(w)[:1500]}"


def test_an_empty_tensor_list_means_every_tensor(theirs, ours):
    """The same batches, each tensor's values equal (but jpg's pixels: JPEG decoders may differ by a
    level). Deliberate: deeplake's len() says 0; ours the 5 batches both yield. The keys' order is
    the dataset's: deeplake's query view lists tensors in creation order, a loaded dataset (deeplake's
    and ours) sorted."""
    want, got = _index_last(_result(theirs, "tensors_empty_list")), ours["tensors_empty_list"]
    assert want["len"] == 0 and got["len"] == 5 == len(got["batches"]) == len(want["batches"])
    for w, g in zip(want["batches"], got["batches"]):
        for result in (w, g):
            for key, value in result["dict"]:
                if key == "jpg":
                    value.pop("v", None)
        assert g["iterates"] == w["iterates"] == "values"
        assert dict((k, v) for k, v in g["dict"]) == dict((k, v) for k, v in w["dict"])
        assert [k for k, _ in g["dict"]] == sorted(k for k, _ in g["dict"] if k != "index") + ["index"]


def _weighted_reordering(rows):
    """Every row once; rows of weight 0 (labels 0 and 3) last, in row order; then the others."""
    positive = [r for r in range(E.N) if r % 4 in (1, 2)]
    zero = [r for r in range(E.N) if r % 4 in (0, 3)]
    assert sorted(rows) == list(range(E.N))
    assert sorted(rows[:len(positive)]) == positive and rows[len(positive):] == zero
    return True


def test_sample_by_replace_false_is_a_weighted_reordering_of_every_row(theirs, ours):
    want = _result(theirs, "sample_replace_false")
    assert want["len"] == ours["sample_replace_false"]["len"] == ours["chain_sample_replace_false"]["len"] == 5
    assert _weighted_reordering(_rows(want))
    assert _weighted_reordering(_rows(ours["sample_replace_false"]))
    assert _weighted_reordering(_rows(ours["chain_sample_replace_false"]))


def test_shuffle_gives_every_row_once_with_its_values(theirs, ours):
    def by_row(result):
        out = {}
        for batch in result["batches"]:
            cols = dict(batch["dict"])
            for k, row in enumerate(r[0] for r in cols["index"]["v"]):
                out[row] = {key: value["v"][k] for key, value in cols.items()}
        return out

    want, got = _result(theirs, "shuffle"), ours["shuffle"]
    assert [len(b["dict"][0][1]["v"]) for b in got["batches"]] == [4] * 5 == \
        [len(b["dict"][0][1]["v"]) for b in want["batches"]]
    assert by_row(got) == by_row(want) and sorted(by_row(got)) == list(range(E.N))


def _set_literal(message):
    """A message whose ``{...}`` set is in deeplake's (arbitrary) set order, with the set sorted."""
    return re.sub(r"\{([^}]*)\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", message)


@pytest.mark.parametrize("name", ["err_decode_unknown", "err_decode_pil_labels", "err_decode_not_selected",
                                  "err_tensors_twice_transform_first", "err_tensors_twice_pytorch_first",
                                  "err_2d_weights"])
def test_errors_with_deeplakes_class_and_text(theirs, ours, name):
    """The same class; our message starts with deeplake's (scripts may match it). Deliberate: a bad
    decode_method is refused at the call that received it (deeplake: at iteration)."""
    want, got = _result(theirs, name)["error"], ours[name]["error"]
    assert got["type"] == want["type"] == "ValueError"
    assert _set_literal(got["message"]).startswith(_set_literal(want["message"]).rstrip(".")), (got, want)
    assert got["stage"] == "build"
    assert want["stage"] == ("iterate" if name.startswith("err_decode") else "build")


@pytest.mark.parametrize("name, token", [("err_query_syntax", "="), ("err_query_tensor", "nope"),
                                         ("err_query_class", "class_99")])
def test_query_errors_are_runtime_errors(theirs, ours, name, token):
    """deeplake's query errors are RuntimeErrors; ours (TQLError, with its position and caret) are too."""
    want, got = _result(theirs, name)["error"], ours[name]["error"]
    assert want["type"] == "RuntimeError" and "RuntimeError" in got["mro"] and got["type"] == "TQLError"
    assert token in want["message"] and token in got["message"]


def test_empty_tensor_is_deeplakes_empty_tensor_error(theirs, ours):
    """Deliberate: deeplake's C++ loader fails inside with an IndexError; ours raises deeplake's
    EmptyTensorError (what its other loaders raise) naming the tensor and the way out."""
    want, got = _result(theirs, "err_empty")["error"], ours["err_empty"]["error"]
    assert want["type"] == "IndexError"
    assert got["type"] == "EmptyTensorError" and "empty tensor empty" in got["message"] and "tensors=" in got["message"]


def test_a_tuple_starting_with_a_str_keeps_every_column(theirs, ours):
    """Deliberate: deeplake's default collate, given tuples whose first item is a str, returns just
    those strs (the index column is dropped without a word); ours keeps both columns."""
    want, got = _result(theirs, "t_str_first"), ours["t_str_first"]
    assert want["batches"][0] == {"list": [{"str": f"row {i}"} for i in range(4)]}
    assert got["batches"][0] == {"list": [{"tuple": [{"str": f"row {i}"} for i in range(4)]},
                                          {"torch": "int64", "shape": [4, 1], "v": [[0], [1], [2], [3]]}]}


def test_batch_zero_is_refused(theirs, ours):
    """Deliberate: deeplake takes batch(0) and yields batches of one; ours refuses it at the call."""
    want, got = _result(theirs, "batch0"), ours["batch0"]
    assert want["len"] == E.N and all(len(b["dict"][0][1]["v"]) == 1 for b in want["batches"])
    assert got["error"]["type"] == "ValueError" and "batch_size" in got["error"]["message"]


# ---- DDP: equal batch counts -------------------------------------------------------------------

_OUR_RANK = r'''
import json, sys
import torch.distributed as dist
import deeplake_loader as dl
rank, world, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
dist.init_process_group("gloo", rank=rank, world_size=world)
loader = dl.load(path, read_only=True).dataloader().query("select * where labels != 3").batch(2, drop_last=True) \
    .pytorch(tensors=["labels"], distributed=True)
out = {"len": len(loader), "batches": [b["index"].reshape(-1).tolist() for b in loader]}
dist.barrier()
dist.destroy_process_group()
print(json.dumps(out))
'''


def test_ddp_ranks_yield_equal_batch_counts(datasets, tmp_path):
    """Deliberate: 15 rows on 2 ranks, batches of 2 with drop_last: deeplake's rank 0 yields 4
    batches and rank 1 three (DDP would wait forever for rank 1's fourth step); ours yields 4 on
    each, rank 1 wrapping around to the epoch's first row. The rows are the same contiguous
    slices."""
    from tests.common.distributed import run_ranks

    want = E.run_enterprise_ddp(datasets["main"], "where labels != 3", batch=2, drop_last=True, world=2)
    script = tmp_path / "rank.py"
    script.write_text(_OUR_RANK)
    got = run_ranks(script, 2, datasets["main"])
    rows = [r for r in range(E.N) if r % 4 != 3]
    assert [len(w["batches"]) for w in want] == [4, 3]
    assert [len(g["batches"]) for g in got] == [4, 4] and [g["len"] for g in got] == [4, 4]
    assert sum(want[0]["batches"], []) == sum(got[0]["batches"], []) == rows[:8]
    assert sum(want[1]["batches"], []) == rows[8:14] and sum(got[1]["batches"], []) == rows[8:] + rows[:1]
