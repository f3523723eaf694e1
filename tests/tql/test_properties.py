"""Random expression trees evaluate to the same rows as a slow per-row reference evaluator, and the
parser only ever raises TQLError, whatever the input."""

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from deeplake_loader.errors import TQLError
from deeplake_loader.tql import query_rows

from .conftest import N

# integer-valued per-row quantities (exact in both evaluators)
COLUMNS = {
    "labels": lambda r, i: r["labels"][i],
    "len(categories)": lambda r, i: len(r["categories"][i]),
    "len(boxes)": lambda r, i: len(r["boxes"][i]),
    "shape(boxes)[0]": lambda r, i: r["boxes"][i].shape[0],
}

numbers = st.integers(min_value=-3, max_value=6).map(lambda v: (str(v) if v >= 0 else f"({v})", lambda r, i, v=v: v))
columns = st.sampled_from(sorted(COLUMNS)).map(lambda c: (c, COLUMNS[c]))


def arith(children):
    def make(a, op, b):
        fn = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y}[op]
        return f"({a[0]} {op} {b[0]})", lambda r, i: fn(a[1](r, i), b[1](r, i))
    return st.builds(make, children, st.sampled_from(["+", "-", "*"]), children)


values = st.recursive(st.one_of(numbers, columns), arith, max_leaves=4)

CMP = {"==": lambda x, y: x == y, "!=": lambda x, y: x != y, "<": lambda x, y: x < y, "<=": lambda x, y: x <= y,
       ">": lambda x, y: x > y, ">=": lambda x, y: x >= y}


def comparison(a, op, b):
    return f"{a[0]} {op} {b[0]}", lambda r, i: CMP[op](a[1](r, i), b[1](r, i))


def in_list(a, items, negate):
    text = f"{a[0]} {'not in' if negate else 'in'} ({', '.join(str(v) for v in items)})"
    return text, lambda r, i: (a[1](r, i) in items) != negate


def between(a, lo, hi):
    return f"{a[0]} between {lo} and {hi}", lambda r, i: lo <= a[1](r, i) <= hi


atoms = st.one_of(
    st.builds(comparison, values, st.sampled_from(sorted(CMP)), values),
    st.builds(in_list, values, st.lists(st.integers(0, 5), min_size=1, max_size=3), st.booleans()),
    st.builds(between, values, st.integers(-1, 3), st.integers(0, 6)),
)


def logic(children):
    def make(a, op, b):
        fn = (lambda x, y: x and y) if op == "and" else (lambda x, y: x or y)
        return f"({a[0]} {op} {b[0]})", lambda r, i: fn(a[1](r, i), b[1](r, i))

    def negate(a):
        return f"not ({a[0]})", lambda r, i: not a[1](r, i)

    return st.one_of(st.builds(make, children, st.sampled_from(["and", "or"]), children), st.builds(negate, children))


conditions = st.recursive(atoms, logic, max_leaves=5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cond=conditions)
def test_random_conditions_match_the_per_row_reference(qds, ref, cond):
    text, fn = cond
    want = [i for i in range(N) if fn(ref, i)]
    assert query_rows(qds, f"select * where {text}").rows.tolist() == want, text


TOKENS = ["select", "*", "where", "labels", "==", "'cat'", "(", ")", "and", "or", "not", "in", ",", "order", "by",
          "limit", "3", "union", "[", "]", ":", "contains", "shape", "boxes", "-", "+", "between", "sample",
          "max_weight", "1.5", "'", '"', "desc", "offset", "group", "@", "caption", "%", "/", "!=", "true"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.sampled_from(TOKENS), max_size=14), noise=st.text(max_size=6))
def test_fuzzed_queries_only_raise_tqlerror(qds, parts, noise):
    for text in (" ".join(parts), " ".join(parts) + noise, noise):
        try:
            res = query_rows(qds, text)
        except TQLError:
            continue
        assert isinstance(res.rows, np.ndarray) and res.rows.dtype == np.int64


# Nesting: a condition wrapped in up to 2,000 levels of parentheses / NOT (...) / unary minus on a
# comparison's operand. Within the parser's depth limit the rows match the reference; past it the
# query is a TQLError that says so — never a RecursionError (Hypothesis raises Python's recursion
# limit while it runs a test, hence depths far past the default limit's reach).
WRAPS = ["paren", "not", "neg"]


def _wrap(text, fn, kinds, depth):
    nots = 0
    for j in range(depth):
        kind = kinds[j % len(kinds)]
        if kind == "paren":
            text = f"({text})"
        elif kind == "not":
            text, nots = f"not ({text})", nots + 1
        else:  # joined to a tautology that nests unary minuses: same rows, one level deeper
            text = f"(-(-(labels)) == labels and ({text}))"
    return text, (lambda r, i: fn(r, i) != (nots % 2 == 1))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cond=conditions, kinds=st.lists(st.sampled_from(WRAPS), min_size=1, max_size=3), depth=st.integers(0, 2000))
@example(cond=("labels == 1", lambda r, i: r["labels"][i] == 1), kinds=["paren"], depth=2000)
@example(cond=("labels == 1", lambda r, i: r["labels"][i] == 1), kinds=["not"], depth=2000)
@example(cond=("labels == 1", lambda r, i: r["labels"][i] == 1), kinds=["neg", "paren"], depth=1000)
def test_deeply_nested_conditions_match_the_reference_or_raise_a_depth_tqlerror(qds, ref, cond, kinds, depth):
    from deeplake_loader.tql.parser import MAX_DEPTH

    text, fn = _wrap(*cond, kinds, depth)
    want = [i for i in range(N) if fn(ref, i)]
    try:
        got = query_rows(qds, f"select * where {text}").rows.tolist()
    except TQLError as e:
        assert "nests" in str(e), str(e)
        assert depth > MAX_DEPTH // 6, f"only {depth} wraps of {kinds} refused: {e}"
        return
    assert got == want, text[:200]
