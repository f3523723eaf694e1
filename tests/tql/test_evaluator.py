"""Every construct of docs/TQL.md against the same selection computed directly in Python/NumPy."""

import numpy as np
import pytest

from deeplake_loader.errors import TQLError
from deeplake_loader.tql import query_rows

from .conftest import N, NAMES

R = range(N)


def rows(ds, q):
    return query_rows(ds, q).rows.tolist()


def where(pred, ref):
    return [i for i in R if pred(i, ref)]


CASES = [
    ("select * where labels != 1", lambda i, r: r["labels"][i] != 1),
    ("SELECT * WHERE labels == 'car'", lambda i, r: r["labels"][i] == 2),
    ("select * where labels = 2 or labels = 'cat'", lambda i, r: r["labels"][i] in (0, 2)),
    ("select * where labels in (0, 'bus', 3)", lambda i, r: r["labels"][i] in (0, 4, 3)),
    ("select * where labels not in (0, 1)", lambda i, r: r["labels"][i] not in (0, 1)),
    ("select * where labels between 1 and 3", lambda i, r: 1 <= r["labels"][i] <= 3),
    ("select * where not labels between 1 and 3", lambda i, r: not 1 <= r["labels"][i] <= 3),
    ("select * where score > 0.5 and labels < 3", lambda i, r: r["score"][i] > 0.5 and r["labels"][i] < 3),
    ("select * where score * 2 + 1 >= 2", lambda i, r: r["score"][i] * 2 + 1 >= 2),
    ("select * where labels % 2 == 1", lambda i, r: r["labels"][i] % 2 == 1),
    ("select * where -score > 1", lambda i, r: -r["score"][i] > 1),
    ("select * where (labels == 1 or labels == 2) and score < 0", lambda i, r: r["labels"][i] in (1, 2) and r["score"][i] < 0),
    ("select * where contains(categories, 'car')", lambda i, r: 2 in r["categories"][i]),
    ("select * where contains(categories, 4)", lambda i, r: 4 in r["categories"][i]),
    ("select * where contains(caption, 'special')", lambda i, r: "special" in r["caption"][i]),
    ("select * where caption == 'dog number 6'", lambda i, r: r["caption"][i] == "dog number 6"),
    ("select * where len(categories) == 2", lambda i, r: len(r["categories"][i]) == 2),
    ("select * where len(caption) > 15", lambda i, r: len(r["caption"][i]) > 15),
    ("select * where len(boxes) == 0", lambda i, r: len(r["boxes"][i]) == 0),
    ("select * where boxes[:, 2] > 10", lambda i, r: bool((r["boxes"][i][:, 2] > 10).all())),
    ("select * where any(boxes[:, 2] > 30)", lambda i, r: bool((r["boxes"][i][:, 2] > 30).any())),
    ("select * where all_strict(boxes[:, 0] < 20)", lambda i, r: len(r["boxes"][i]) > 0 and bool((r["boxes"][i][:, 0] < 20).all())),
    ("select * where all(boxes[:, 0] < 20)", lambda i, r: bool((r["boxes"][i][:, 0] < 20).all())),
    ("select * where shape(grp/images)[0] > 14", lambda i, r: r["images"][i].shape[0] > 14),
    ("select * where shape(boxes)[0] >= 2", lambda i, r: r["boxes"][i].shape[0] >= 2),
    ("select * where sum(boxes) > 100", lambda i, r: r["boxes"][i].sum() > 100),
    ("select * where max(boxes) < 30", lambda i, r: len(r["boxes"][i]) and r["boxes"][i].max() < 30),
    ("select * where mean(grp/images) > 127", lambda i, r: r["images"][i].mean() > 127),
    ("select * where min(categories) == 0", lambda i, r: len(r["categories"][i]) and min(r["categories"][i]) == 0),
    ("select * where true", lambda i, r: True),
]


@pytest.mark.parametrize("query, pred", CASES, ids=[c[0] for c in CASES])
def test_where(qds, ref, query, pred):
    assert rows(qds, query) == where(pred, ref)


def test_order_by_limit_offset(qds, ref):
    key = [float(v) for v in ref["score"]]
    asc = sorted(R, key=lambda i: key[i])
    assert rows(qds, "select * order by score") == asc
    assert rows(qds, "select * order by score asc limit 5") == asc[:5]
    assert rows(qds, "select * order by score desc limit 5 offset 2") == sorted(R, key=lambda i: -key[i])[2:7]
    by_label = sorted(R, key=lambda i: ref["labels"][i])  # stable
    assert rows(qds, "select * where score > 0 order by labels") == [i for i in by_label if ref["score"][i] > 0]
    assert rows(qds, "select * order by caption limit 3") == sorted(R, key=lambda i: ref["caption"][i])[:3]
    assert rows(qds, "select * limit 4 offset 10") == list(range(10, 14))


def test_order_by_desc_reverses_ties(qds, ref):
    """Deep Lake's `desc` is its ascending order reversed, ties included (LOADER_SEMANTICS.md: with
    labels i % 10 over 200 rows, `order by labels desc limit 5` gives 199, 189, 179, 169, 159), so
    `limit` after `desc` picks the last rows of the top label, not the first."""
    asc = sorted(R, key=lambda i: ref["labels"][i])  # stable: ties in row order
    desc = asc[::-1]
    assert rows(qds, "select * order by labels desc") == desc
    assert rows(qds, "select * order by labels desc limit 5") == desc[:5]
    assert rows(qds, "select * where score > 0 order by labels desc limit 6 offset 1") == \
        [i for i in desc if ref["score"][i] > 0][1:7]
    assert rows(qds, "select * order by len(categories) desc limit 9") == \
        sorted(R, key=lambda i: len(ref["categories"][i]))[::-1][:9]


def test_set_operations(qds, ref):
    a = set(where(lambda i, r: r["labels"][i] == 1, ref))
    b = set(where(lambda i, r: r["score"][i] > 0, ref))
    assert rows(qds, "(select * where labels == 1) union (select * where score > 0)") == sorted(a | b)
    assert rows(qds, "(select * where labels == 1) intersect (select * where score > 0)") == sorted(a & b)
    assert rows(qds, "(select * where labels == 1) except (select * where score > 0)") == sorted(a - b)
    # like Deep Lake: dataset order, no duplicates, even when the parts are ordered differently
    q = "(select * order by score desc limit 10) union (select * where labels == 1 limit 3)"
    top = sorted(R, key=lambda i: -ref["score"][i])[:10]
    ones = [i for i in R if ref["labels"][i] == 1][:3]
    assert rows(qds, q) == sorted(set(top) | set(ones))


def test_reference_examples(qds, ref):
    assert rows(qds, "select * where labels != 5") == list(R)  # no class 5 in this dataset
    q = ("(select * where contains(categories, 'car') limit 1000) union "
         "(select * where contains(categories, 'motorcycle') limit 1000)")
    assert rows(qds, q) == [i for i in R if 2 in ref["categories"][i] or 3 in ref["categories"][i]]


def test_projection_and_from(qds):
    res = query_rows(qds, "select labels, caption from anything where labels == 0")
    assert res.tensors == ["labels", "caption"]
    assert query_rows(qds, "select * where labels == 0").tensors is None


def test_queries_on_views_use_view_positions(qds, ref):
    view = qds[10:40]
    got = rows(view, "select * where labels == 2")
    assert got == [i - 10 for i in range(10, 40) if ref["labels"][i] == 2]
    assert qds.query("select * where labels == 2")[0:2].index_rows.tolist() == where(lambda i, r: r["labels"][i] == 2, ref)[:2]


def test_random_is_seeded(qds):
    import deeplake_loader as dl

    dl.random.seed(4)
    a = rows(qds, "select * where random() < 0.5")
    dl.random.seed(4)
    assert rows(qds, "select * where random() < 0.5") == a and 20 < len(a) < 100
    dl.random.seed(None)


@pytest.mark.parametrize("query, message", [
    ("select * where nope > 1", "tensor 'nope' does not exist; tensors: boxes, caption, categories, grp/images, labels, score"),
    ("select * where caption > 3", "cannot compare text with a number"),
    ("select * where score == 'cat'", "cannot compare tensor 'score' with the string 'cat'"),
    ("select * where labels == 'zebra'", "'zebra' is not a class of tensor 'labels'"),
    ("select * where labels ==", "expected a value"),
    ("select * where labels == 1 group by labels", "GROUP BY is not supported"),
    ("select * order by l2_norm(boxes - 1)", "vector similarity (l2_norm) is not supported"),
    ("select * where foo(labels)", "unknown function foo()"),
    ("select * where contains(caption)", "contains() takes 2 arguments"),
    ("select * where caption[0] == 1", "only numeric tensors"),
    ("select * where labels == 1 limit 2.5", "whole number"),
    ("select * where labels == 1) ", "unexpected ')'"),
    ("select max(labels)", "computed columns are not supported"),
    ("select * where boxes[:, 9] > 1", "index out of range for row"),
])
def test_errors_are_clear_and_positioned(qds, query, message):
    with pytest.raises(TQLError) as e:
        query_rows(qds, query)
    text = str(e.value)
    assert message in text, text
    assert "^" in text.splitlines()[-1] and query in text
