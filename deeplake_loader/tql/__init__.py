"""The query language behind ``ds.query(...)``, ``loader.query(...)`` and string ``sample_by``
(a documented subset of Deep Lake's TQL: docs/TQL.md).

``query_rows(dataset, text) -> QueryResult(rows, tensors)``: row positions within ``dataset`` (a
dataset or a view) and the projected tensors (None for ``select *``).
``sample_weights(dataset, text) -> (weights, replace, size)`` for ``sample_by("...")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import TQLError
from . import ast
from .evaluator import Evaluator
from .parser import parse, parse_sample

__all__ = ["QueryResult", "query_rows", "sample_weights", "TQLError"]


@dataclass
class QueryResult:
    rows: np.ndarray
    tensors: Optional[list]


def query_rows(dataset, text: str) -> QueryResult:
    node = parse(text)
    rows, tensors = Evaluator(dataset, text).query(node)
    return QueryResult(np.asarray(rows, dtype=np.int64), tensors)


def sample_weights(dataset, text: str):
    node = parse_sample(text)
    if not isinstance(node, ast.Sample):
        sample = getattr(node, "sample", None)
        if sample is None:
            raise TQLError(f"sample_by() needs a weight expression (e.g. 'labels' or 'max_weight(labels == 1: 5)') "
                           f"or a query with SAMPLE BY; got: {text}")
        if node.where is not None or node.order_by is not None or node.limit is not None:
            raise TQLError("sample_by() takes the SAMPLE BY part only; filter with .query() first")
        node = sample
    return Evaluator(dataset, text).sample(node)
