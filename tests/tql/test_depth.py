"""Query depth and length: deep nesting is a positioned TQLError (never a RecursionError or a
hang), nesting within the limit evaluates exactly, and a query's cost is linear in its length
(10,000-token queries parse and evaluate; chains of operators as long as the query are walked
without recursion)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from deeplake_loader.errors import TQLError
from deeplake_loader.tql import query_rows, sample_weights
from deeplake_loader.tql.parser import MAX_DEPTH, parse

from .conftest import N

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# kind -> query nesting n levels of it
DEEP = {
    "parens": lambda n: "select * where " + "(" * n + "labels == 1" + ")" * n,
    "nots": lambda n: "select * where " + "not " * n + "labels == 1",
    "minuses": lambda n: "select * where labels == " + "-" * n + "1",
    "query-parens": lambda n: "(" * n + "select * where labels == 1" + ")" * n,
    "calls": lambda n: "select * where " + "len(" * n + "labels" + ")" * n + " > 0",
    "indexes": lambda n: "select * where labels[" * 1 + "labels[" * (n - 1) + "0" + "]" * n + " == 1",
    "in-lists": lambda n: "select * where labels in " + "(" * n + "1" + ")" * n,
    "sample-by": lambda n: "select * sample by " + "(" * n + "labels" + ")" * n,
}

# The deep queries run in a subprocess with a deadline: a regression (RecursionError, or a parser
# that backtracks) must fail the test, not hang the suite.
_DEEP_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from deeplake_loader.tql.parser import parse
    from tests.tql.test_depth import DEEP
    out = {}
    for kind, make in DEEP.items():
        for n in (500, 1000, 5000):
            t = time.monotonic()
            try:
                parse(make(n))
                res = {"error": None}
            except BaseException as e:
                res = {"error": type(e).__name__, "message": str(e)}
            res["seconds"] = time.monotonic() - t
            out[f"{kind}-{n}"] = res
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def deep_results():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", _DEEP_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("n", [500, 1000, 5000])
@pytest.mark.parametrize("kind", sorted(DEEP))
def test_deep_nesting_is_a_positioned_tqlerror(deep_results, kind, n):
    r = deep_results[f"{kind}-{n}"]
    assert r["error"] == "TQLError", r
    assert f"more than {MAX_DEPTH} levels" in r["message"], r["message"]
    pos = int(r["message"].split("(at position ")[1].split(")")[0])
    text = DEEP[kind](n)
    assert 0 < pos < len(text)
    caret_line = r["message"].splitlines()[-1]
    assert caret_line.index("^") == pos + 4, "the caret is not under the reported position"


@pytest.mark.parametrize("kind", ["parens", "nots", "minuses", "query-parens", "in-lists", "sample-by"])
def test_nesting_within_the_limit_evaluates_exactly(qds, ref, kind):
    """The deepest query of each kind that the parser accepts evaluates to the flat query's rows."""
    n = max(k for k in range(0, MAX_DEPTH + 1) if _parses(DEEP[kind](k)))
    assert n >= MAX_DEPTH // 2 - 3, f"only {n} levels of {kind} are accepted"
    if kind == "sample-by":
        weights, _, _ = sample_weights(qds, DEEP[kind](n))
        assert weights.tolist() == [float(v) for v in ref["labels"]]
        return
    got = query_rows(qds, DEEP[kind](n)).rows.tolist()
    if kind == "nots":
        want = [i for i in range(N) if (ref["labels"][i] == 1) != (n % 2 == 1)]
    elif kind == "minuses":
        want = [i for i in range(N) if ref["labels"][i] == (1 if n % 2 == 0 else -1)]
    else:
        want = [i for i in range(N) if ref["labels"][i] == 1]
    assert got == want


def _parses(text):
    try:
        parse(text)
        return True
    except TQLError:
        return False


def test_deep_query_from_a_deep_caller_is_a_tqlerror_not_a_recursionerror(qds):
    """Even when the caller has used most of Python's stack, a bad depth is a TQLError."""
    def recurse(k):
        if k:
            return recurse(k - 1)
        return query_rows(qds, DEEP["parens"](MAX_DEPTH - 5))

    with pytest.raises(TQLError, match="nests"):
        recurse(sys.getrecursionlimit() - 150)


# Long flat queries: ~10,000 tokens each, checked against a per-row reference. Run in a
# subprocess with a deadline (a parser or evaluator that is not linear fails, not hangs).
_LONG_SCRIPT = textwrap.dedent("""
    import json, sys
    import deeplake_loader as dl
    from tests.tql.conftest import reference_data
    from tests.tql.test_depth import LONG
    from deeplake_loader.tql import query_rows
    ds = dl.load(sys.argv[1], read_only=True)
    out = {}
    for kind, (make, _) in LONG.items():
        try:
            out[kind] = query_rows(ds, make()).rows.tolist()
        except BaseException as e:
            out[kind] = f"{type(e).__name__}: {str(e)[:300]}"
    print(json.dumps(out))
""")

K = 2500  # terms; 4 tokens each -> 10,000 tokens
LONG = {
    "or-chain": (lambda: "select * where " + " or ".join(f"labels == {k % 7}" for k in range(K)),
                 lambda r, i: r["labels"][i] < 7),
    "and-chain": (lambda: "select * where " + " and ".join(f"labels != {5 + k % 3}" for k in range(K)),
                  lambda r, i: True),
    "arith-chain": (lambda: "select * where labels * 0 " + " ".join(f"+ {k % 3} - {k % 3}" for k in range(K)) + " == 0",
                    lambda r, i: True),
    "in-list": (lambda: "select * where labels in (" + ", ".join(str(3 + k % 50) for k in range(2 * K)) + ")",
                lambda r, i: r["labels"][i] >= 3),
    "union-chain": (lambda: " union ".join(f"(select * where labels == {k % 3})" for k in range(K // 3)),
                    lambda r, i: r["labels"][i] < 3),
    "between-chain": (lambda: "select * where " + " and ".join("labels between 1 and 3" for _ in range(K // 2)),
                      lambda r, i: 1 <= r["labels"][i] <= 3),
}


def test_queries_of_ten_thousand_tokens_return_exact_rows(qds, ref):
    from deeplake_loader.tql.lexer import tokenize

    for kind, (make, _) in LONG.items():
        assert len(tokenize(make())) >= 5000, kind
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", _LONG_SCRIPT, qds.path], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    for kind, (_, fn) in LONG.items():
        assert got[kind] == [i for i in range(N) if fn(ref, i)], f"{kind}: {str(got[kind])[:300]}"


def test_sample_by_string_is_bounded_too(qds):
    with pytest.raises(TQLError, match="nests"):
        sample_weights(qds, "(" * 1000 + "labels" + ")" * 1000)
