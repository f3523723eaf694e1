"""Weighted sampling from query strings follows the weights (chi-square)."""

import math

import numpy as np
import pytest

import deeplake_loader as dl
from deeplake_loader.errors import TQLError
from deeplake_loader.tql import query_rows, sample_weights

from .conftest import N


def chi2_ok(counts, probs, z=3.719):
    keep = probs > 0
    assert counts[~keep].sum() == 0
    exp = probs[keep] * counts.sum()
    stat = float(((counts[keep] - exp) ** 2 / exp).sum())
    df = int(keep.sum()) - 1
    return stat < df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def test_max_and_sum_weight(qds, ref):
    labels = np.array(ref["labels"])
    w, replace, size = sample_weights(qds, "max_weight(labels == 'dog': 10, labels == 1 or labels == 2: 5)")
    assert replace is None and size is None
    assert np.array_equal(w, np.where(labels == 1, 10.0, np.where(labels == 2, 5.0, 0.0)))
    w, _, _ = sample_weights(qds, "sum_weight(labels == 1: 10, labels <= 2: 5)")
    assert np.array_equal(w, np.where(labels == 1, 15.0, np.where(labels <= 2, 5.0, 0.0)))
    w, _, _ = sample_weights(qds, "labels")
    assert np.array_equal(w, labels.astype(float))


def test_loader_sample_by_string_follows_weights(qds, ref):
    dl.random.seed(11)
    labels = np.array(ref["labels"])
    loader = qds.dataloader().sample_by("max_weight(labels == 0: 1, labels == 3: 4)", size=20000).batch(1000)
    rows = np.concatenate([b["index"].numpy().reshape(-1) for b in loader.pytorch(tensors=["labels"])])
    w = np.where(labels == 0, 1.0, np.where(labels == 3, 4.0, 0.0))
    assert chi2_ok(np.bincount(rows, minlength=N), w / w.sum())


def test_sample_by_inside_a_query(qds, ref):
    dl.random.seed(5)
    res = query_rows(qds, "select * where labels != 4 sample by sum_weight(labels == 1: 3, labels == 2: 1) "
                          "replace true limit 30000")
    labels = np.array(ref["labels"])
    w = np.where(labels == 1, 3.0, np.where(labels == 2, 1.0, 0.0))
    assert len(res.rows) == 30000 and chi2_ok(np.bincount(res.rows, minlength=N), w / w.sum())
    res = query_rows(qds, "select * sample by labels replace false limit 10")
    assert len(set(res.rows.tolist())) == 10 and all(labels[res.rows] > 0)


def test_replace_false_is_a_weighted_reordering_of_every_row(qds, ref):
    """As deeplake: `replace false` orders every row (positive weights first, drawn by weight, then
    the weight-0 rows in row order); a limit cuts that order, one above the row count gives every
    row; all weights 0 gives the rows in order. With replacement all-zero weights are an error
    (deeplake hangs)."""
    labels = np.array(ref["labels"])
    ones = [int(r) for r in np.flatnonzero(labels == 1)]
    res = query_rows(qds, "select * sample by max_weight(labels == 1: 1) replace false limit 1000").rows.tolist()
    assert len(res) == N and sorted(res[:len(ones)]) == ones
    assert res[len(ones):] == [r for r in range(N) if labels[r] != 1]
    three = query_rows(qds, "select * sample by max_weight(labels == 1: 1) replace false limit 3").rows.tolist()
    assert len(ones) >= 3 and len(set(three)) == 3 and set(three) <= set(ones)
    assert query_rows(qds, "select * sample by labels * 0 replace false").rows.tolist() == list(range(N))
    with pytest.raises(RuntimeError, match="weights sum to zero"):
        query_rows(qds, "select * sample by labels * 0")


def test_sample_errors(qds):
    with pytest.raises(TQLError, match="needs a weight expression"):
        sample_weights(qds, "select * where labels == 1")
    with pytest.raises(TQLError, match="one number per row"):
        sample_weights(qds, "boxes")
    with pytest.raises(TQLError, match="finite and non-negative; weight at index \\d+ is -"):
        sample_weights(qds, "labels - 3")
