"""Vectorised evaluation of a query over whole columns.

A value over the N rows of the dataset is a ``Col``:
  num     ndarray (N, ...) of numbers/bools (one row per dataset row)
  csr     (values (M, ...), offsets (N+1)): rows that differ in their first dimension only
          (boxes, multi-labels), row r = values[offsets[r]:offsets[r+1]]; reduced per row by the
          native loops of _kernels/ragged.pyx
  ragged  list of N ndarrays of differing shapes (anything else variable-shaped)
  str     object ndarray (N,) of str (text tensors)
  obj     list of N Python objects (json/list tensors)
Literals stay Python scalars and broadcast. Each tensor column is loaded once per query, chunk by
chunk (``TensorReader.column``). A condition with several values per row (``boxes[:, 2] > 10``) is
true when all of them are (``any(...)`` for at least one).
"""

from __future__ import annotations

import operator

import numpy as np

from .. import random as dl_random
from .._kernels import sampling
from .._kernels.ragged import segment_bool, segment_reduce
from ..errors import TQLError
from . import ast
from .lexer import error

_CMP = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "%": operator.mod}
_CHAINED = (ast.Binary, ast.InList, ast.Between, ast.Index)  # nodes whose left/target may chain


class Col:
    def __init__(self, kind, data, class_names=None, tensor=None):
        self.kind, self.data, self.class_names, self.tensor = kind, data, class_names, tensor

    def __len__(self):
        return len(self.data)


class Evaluator:
    def __init__(self, dataset, text: str):
        self.ds, self.text = dataset, text
        self.n = len(dataset)
        self.rows = np.arange(self.n, dtype=np.int64) if dataset.index_rows is None \
            else np.asarray(dataset.index_rows, np.int64)
        self._columns: dict = {}

    def fail(self, node, message):
        return error(self.text, node.pos, message)

    # ------------------------------------------------------------------------------- queries
    def query(self, node):
        """(positions within the dataset, projected tensor names or None). A chain ``q1 union q2
        union ...`` (a left-deep tree) is walked by a loop, however long."""
        chain = []
        while isinstance(node, ast.SetOp):
            chain.append(node)
            node = node.left
        rows, tensors = self.select(node), self.projection(node)
        for op_node in reversed(chain):
            right, _ = self.query(op_node.right)
            op = {"union": np.union1d, "intersect": np.intersect1d, "except": np.setdiff1d}[op_node.op]
            rows = op(rows, right).astype(np.int64)
        return rows, tensors

    def projection(self, node):
        if node.columns is None:
            return None
        for c in node.columns:
            self.tensor_name(c)
        return [c.name for c in node.columns]

    def select(self, node):
        rows = np.arange(self.n, dtype=np.int64)
        if node.where is not None:
            rows = rows[self.truth(self.eval(node.where), node.where)]
        if node.sample is not None:
            weights, replace, size = self.sample(node.sample)
            rows = rows[self.draw(weights[rows], replace, size, node.sample)]
        if node.order_by is not None:
            key = self.sort_key(self.eval(node.order_by), node.order_by)[rows]
            order = np.argsort(key, kind="stable")
            # Deep Lake: descending is the ascending order reversed, ties included (so `limit` after
            # `order by labels desc` takes the last rows of each label first)
            rows = rows[order[::-1] if node.descending else order]
        end = None if node.limit is None else node.offset + node.limit
        return rows[node.offset:end]

    def sample(self, node):
        """(weights over all rows, replace, size) of a SAMPLE BY clause / sample_by string."""
        w = node.weights
        if isinstance(w, ast.Weighted):
            out = np.zeros(self.n, np.float64)
            for cond, weight in w.pairs:
                hit = self.truth(self.eval(cond), cond)
                value = self.per_row_number(self.eval(weight), weight)
                out = np.where(hit, np.maximum(out, value), out) if w.kind == "max" else out + np.where(hit, value, 0)
        else:
            out = self.per_row_number(self.eval(w), w).astype(np.float64)
        if len(out):
            try:
                sampling.check_weights(out, allow_zero=node.replace is False)
            except ValueError as e:
                raise self.fail(w, str(e)) from None
        return out, node.replace, node.limit

    def draw(self, weights, replace, size, node):
        """Positions drawn: with replacement ``size`` (default: every row) draws; without, Deep Lake's
        weighted reordering (positive weights in weighted order, then weight 0 in row order), cut
        at ``size``."""
        if size == 0 or not len(weights):
            return np.zeros(0, np.int64)
        seed = dl_random.stream("tql-sample")
        if replace is False:
            return sampling.weighted_order(weights, size, seed)
        if not weights.sum() > 0:
            raise self.fail(node, "every weight is 0: nothing to sample with replacement")
        return sampling.AliasSampler(weights).draw(len(weights) if size is None else size, seed)

    # --------------------------------------------------------------------------- expressions
    def eval(self, node):
        """The value of an expression. The left spine of operator chains (``a and b and c``,
        ``x + y - z``, ``t[0][1]``, ``v in (..) in (..)``: left-deep trees as long as the query) is
        walked by a loop, so only real nesting (bounded by the parser's MAX_DEPTH) recurses."""
        spine = []
        while isinstance(node, _CHAINED):
            spine.append(node)
            node = node.target if not isinstance(node, ast.Binary) else node.left
        value = self._at(node, self._eval, node)
        for n in reversed(spine):
            value = self._at(n, self._apply, n, value)
        return value

    def _at(self, node, fn, *args):
        try:
            return fn(*args)
        except TQLError:
            raise
        except Exception as e:  # noqa: BLE001 - numpy/type errors become query errors at this node
            raise self.fail(node, f"cannot evaluate this expression: {type(e).__name__}: {e}") from None

    def _apply(self, node, v):
        """A chained node (Binary, InList, Between, Index) applied to the value of its left/target."""
        if isinstance(node, ast.Binary):
            if node.op in ("and", "or"):
                a = self.truth(v, node.left)
                b = self.truth(self.eval(node.right), node.right)
                return Col("num", (a & b) if node.op == "and" else (a | b))
            b = self.eval(node.right)
            if node.op in _CMP:
                return self.compare(_CMP[node.op], v, b, node)
            return self.arith(_ARITH[node.op], v, b, node)
        if isinstance(node, ast.InList):
            hit = None
            for item in node.items:
                h = self.truth(self.compare(operator.eq, v, self.eval(item), item), item, reduce=np.any)
                hit = h if hit is None else hit | h
            return Col("num", ~hit if node.negate else hit)
        if isinstance(node, ast.Between):
            lo = self.compare(operator.ge, v, self.eval(node.low), node.low)
            hi = self.compare(operator.le, v, self.eval(node.high), node.high)
            hit = self.truth(lo, node) & self.truth(hi, node)
            return Col("num", ~hit if node.negate else hit)
        return self.index(v, node)

    def _eval(self, node):
        if isinstance(node, ast.Literal):
            return node.value
        if isinstance(node, ast.Name):
            return self.column(node)
        if isinstance(node, ast.Unary):
            v = self.eval(node.operand)
            if node.op == "not":
                return Col("num", ~self.truth(v, node.operand)) if isinstance(v, Col) else (not v)
            return self.arith(operator.neg, v, None, node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, (ast.Weighted, ast.Sample)):
            raise self.fail(node, "max_weight/sum_weight only appear in SAMPLE BY or sample_by()")
        raise self.fail(node, f"unsupported expression {type(node).__name__}")

    # ------------------------------------------------------------------------------- columns
    def tensor_name(self, node) -> str:
        if node.name not in self.ds.tensors:
            raise self.fail(node, f"tensor '{node.name}' does not exist; tensors: {', '.join(self.ds.tensors)}")
        return node.name

    def reader(self, node):
        return self.ds._reader(self.tensor_name(node))

    def column(self, node) -> Col:
        name = self.tensor_name(node)
        if name in self._columns:
            return self._columns[name]
        r = self.ds._reader(name)
        htype = r.base_htype
        names = r.class_names if htype == "class_label" else None
        if htype == "text":
            col = Col("str", np.array(r.read_many(self.rows), dtype=object), tensor=name)
        elif htype in ("json", "list", "tag"):
            col = Col("obj", r.read_many(self.rows), tensor=name)
        else:
            csr = None if r.min_shape == r.max_shape else r.ragged_column(self.rows)
            data = csr if csr is not None else r.column(self.rows)
            if csr is not None:
                col = Col("csr", (_widen(csr[0]), csr[1]), names, name)
            elif isinstance(data, np.ndarray):
                if data.ndim == 2 and data.shape[1] == 1:
                    data = data[:, 0]  # one value per row: scalars and single labels
                col = Col("num", data, names, name)
            else:
                shapes = {a.shape for a in data}
                if len(shapes) == 1 and data:
                    arr = np.stack(data)
                    col = Col("num", arr[:, 0] if arr.ndim == 2 and arr.shape[1] == 1 else arr, names, name)
                else:
                    col = Col("ragged", data, names, name)
        if col.kind == "num":
            col.data = _widen(col.data)
        elif col.kind == "ragged":
            col.data = [_widen(np.asarray(x)) for x in col.data]
        self._columns[name] = col
        return col

    # ------------------------------------------------------------------------------ operators
    def _labels(self, col, value, node):
        """A string compared with a class_label tensor becomes its class index."""
        if col.class_names is None:
            raise self.fail(node, f"cannot compare {'tensor ' + repr(col.tensor) if col.tensor else 'a number'} "
                                  f"with the string '{value}'")
        if value not in col.class_names:
            raise self.fail(node, f"'{value}' is not a class of tensor '{col.tensor}'; classes: "
                                  f"{', '.join(col.class_names)}")
        return col.class_names.index(value)

    def compare(self, op, a, b, node):
        if not isinstance(a, Col) and not isinstance(b, Col):
            return op(a, b)
        if not isinstance(a, Col):  # literal first: flip the comparison
            flip = {operator.lt: operator.gt, operator.gt: operator.lt, operator.le: operator.ge,
                    operator.ge: operator.le}
            return self.compare(flip.get(op, op), b, a, node)
        if isinstance(b, str) and a.kind in ("num", "ragged", "csr"):
            b = self._labels(a, b, node)
        elif isinstance(b, Col) and b.kind == "str" and a.kind != "str" or \
                a.kind == "str" and not (isinstance(b, str) or isinstance(b, Col) and b.kind == "str"):
            raise self.fail(node, "cannot compare text with a number")
        if a.kind == "obj":
            return Col("num", np.array([bool(op(x, b)) for x in a.data]))
        return self.elementwise(op, a, b, node)

    def arith(self, op, a, b, node):
        for v in (a, b):
            if isinstance(v, str) or isinstance(v, Col) and v.kind in ("str", "obj"):
                raise self.fail(node, "arithmetic needs numbers")
        if b is None:
            if not isinstance(a, Col):
                return op(a)
            if a.kind == "csr":
                return Col("csr", (op(a.data[0]), a.data[1]))
            return Col(a.kind, [op(x) for x in a.data] if a.kind == "ragged" else op(a.data))
        if not isinstance(a, Col) and not isinstance(b, Col):
            return op(a, b)
        return self.elementwise(op, a, b, node)

    def elementwise(self, op, a, b, node):
        def val(v):
            return v.data if isinstance(v, Col) else v

        if any(isinstance(v, Col) and v.kind == "csr" for v in (a, b)):
            out = _csr_elementwise(op, a, b)
            if out is not None:
                return out
            a, b = _as_list(a), _as_list(b)
        ragged = any(isinstance(v, Col) and v.kind == "ragged" for v in (a, b))
        if ragged:
            av = val(a) if isinstance(a, Col) else [a] * self.n
            bv = val(b) if isinstance(b, Col) else [b] * self.n
            return Col("ragged", [np.asarray(op(np.asarray(x), np.asarray(y))) for x, y in zip(av, bv)])
        av, bv = val(a), val(b)
        if isinstance(av, np.ndarray) and isinstance(bv, np.ndarray) and av.ndim != bv.ndim:
            if av.ndim < bv.ndim:
                av = av.reshape(av.shape + (1,) * (bv.ndim - av.ndim))
            else:
                bv = bv.reshape(bv.shape + (1,) * (av.ndim - bv.ndim))
        kind = "str" if (isinstance(a, Col) and a.kind == "str" and op in _ARITH.values()) else "num"
        if isinstance(a, Col) and a.kind == "str":
            return Col("num", np.array([op(x, y) for x, y in zip(av, bv if isinstance(bv, np.ndarray)
                                                                   else [bv] * len(av))], dtype=bool))
        return Col(kind, op(av, bv))

    def truth(self, v, node, reduce=np.all) -> np.ndarray:
        """One bool per row."""
        if not isinstance(v, Col):
            return np.full(self.n, bool(v))
        if v.kind == "num":
            d = np.asarray(v.data)
            if d.ndim == 1:
                return d.astype(bool)
            return reduce(d.reshape(len(d), -1).astype(bool), axis=1)
        if v.kind == "csr":
            flat, offsets = _flat(v)
            return segment_bool(flat.astype(bool).view(np.uint8), offsets, _ANY if reduce is np.any else _ALL)
        if v.kind == "ragged":
            return np.array([bool(reduce(np.asarray(x, dtype=bool))) for x in v.data], dtype=bool)
        if v.kind == "str":
            return np.array([bool(s) for s in v.data], dtype=bool)
        return np.array([bool(x) for x in v.data], dtype=bool)

    def per_row_number(self, v, node) -> np.ndarray:
        if not isinstance(v, Col):
            if isinstance(v, str):
                raise self.fail(node, "a weight must be a number")
            return np.full(self.n, float(v))
        if v.kind == "num" and np.asarray(v.data).ndim == 1:
            return np.asarray(v.data, dtype=np.float64)
        raise self.fail(node, "this needs one number per row (use sum(...), mean(...), x[0], ...)")

    def sort_key(self, v, node) -> np.ndarray:
        if isinstance(v, Col) and v.kind == "str":
            _, inverse = np.unique(v.data.astype(str), return_inverse=True)
            return inverse.astype(np.float64)
        return self.per_row_number(v, node)

    def index(self, v, node):
        idx = []
        for item in node.items:
            if isinstance(item, ast.Slice):
                parts = [None if p is None else self.literal_int(p) for p in (item.start, item.stop, item.step)]
                idx.append(slice(*parts))
            else:
                idx.append(self.literal_int(item))
        idx = tuple(idx)
        if not isinstance(v, Col) or v.kind in ("str", "obj"):
            raise self.fail(node, "only numeric tensors and shape(...) can be indexed")
        if v.kind == "csr" and idx[0] == slice(None):
            values, offsets = v.data
            if values.ndim < len(idx):
                raise self.fail(node, f"index has {len(idx)} dimensions, the rows have {values.ndim}")
            try:
                return Col("csr", (values[idx], offsets), v.class_names, v.tensor)
            except IndexError:
                raise self.fail(node, "index out of range for rows of shape (n, "
                                      f"{', '.join(str(d) for d in values.shape[1:])})") from None
        if v.kind == "csr":
            v = _as_list(v)
        if v.kind == "num":
            d = np.asarray(v.data)
            if d.ndim - 1 < len(idx):
                raise self.fail(node, f"index has {len(idx)} dimensions, the values have {d.ndim - 1}")
            return Col("num", d[(slice(None),) + idx], v.class_names, v.tensor)
        out = []
        for row, x in enumerate(v.data):
            x = np.asarray(x)
            if x.ndim < len(idx):
                raise self.fail(node, f"row {row} has shape {x.shape}: it cannot take {len(idx)} indices")
            try:
                out.append(np.asarray(x[idx]))
            except IndexError:
                raise self.fail(node, f"index out of range for row {row} (shape {x.shape})") from None
        return Col("ragged", out, v.class_names, v.tensor)

    def literal_int(self, node) -> int:
        v = self.eval(node)
        if isinstance(v, Col) or isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(node, "indices must be whole numbers")
        return v

    # ------------------------------------------------------------------------------- functions
    def call(self, node):
        fn = FUNCTIONS.get(node.func)
        if fn is None:
            raise self.fail(node, f"unknown function {node.func}(); supported: {', '.join(sorted(FUNCTIONS))}")
        arity = fn.__code__.co_argcount - 2
        if len(node.args) != arity:
            raise self.fail(node, f"{node.func}() takes {arity} argument{'s' if arity != 1 else ''}, got {len(node.args)}")
        return fn(self, node, *node.args)


_ANY, _ALL, _ALL_STRICT = 0, 1, 2
_OPS = {"sum": 0, "min": 1, "max": 2, "mean": 3}


def _flat(col):
    """(per-element values, per-row element offsets) of a csr column."""
    values, offsets = col.data
    per = int(np.prod(values.shape[1:])) if values.ndim > 1 else 1
    return np.ascontiguousarray(values).reshape(-1), offsets * per


def _as_list(v):
    """A csr column as a list of per-row arrays (for the operations without a native loop)."""
    if isinstance(v, Col) and v.kind == "csr":
        values, offsets = v.data
        return Col("ragged", [values[offsets[r]:offsets[r + 1]] for r in range(len(offsets) - 1)],
                   v.class_names, v.tensor)
    return v


def _csr_elementwise(op, a, b):
    """op over a csr column and a literal, a per-row number or a csr column of the same rows;
    None if the operands need the per-row path."""
    csr = a if isinstance(a, Col) and a.kind == "csr" else b
    values, offsets = csr.data

    def operand(v):
        if not isinstance(v, Col):
            return v
        if v.kind == "csr":
            return v.data[0] if np.array_equal(v.data[1], offsets) and v.data[0].shape == values.shape else None
        if v.kind == "num" and np.asarray(v.data).ndim == 1:
            per_row = np.repeat(np.asarray(v.data), np.diff(offsets))
            return per_row.reshape(per_row.shape + (1,) * (values.ndim - 1))
        return None

    x, y = operand(a), operand(b)
    if x is None or y is None:
        return None
    return Col("csr", (np.asarray(op(x, y)), offsets), csr.class_names, csr.tensor)


def _widen(a):
    """Integers as int64 and floats as float64, so arithmetic with literals neither wraps (uint32
    labels - 3) nor overflows, and matches Python's numbers."""
    if a.dtype.kind in "iu":
        return a.astype(np.int64)
    if a.dtype.kind == "f":
        return a.astype(np.float64)
    return a


def _rows_of(ev, v, node):
    """Per-row arrays of a value (for reductions)."""
    if not isinstance(v, Col):
        raise ev.fail(node, "this function needs a tensor or an expression over one")
    if v.kind == "num":
        d = np.asarray(v.data)
        return d.reshape(len(d), -1) if d.ndim > 1 else d.reshape(-1, 1)
    if v.kind == "ragged":
        return [np.asarray(x).reshape(-1) for x in v.data]
    raise ev.fail(node, "this function needs numbers")


def _reduce(name, fn, empty):
    def f(ev, node, arg):
        v = ev.eval(arg)
        if isinstance(v, Col) and v.kind == "csr":
            flat, offsets = _flat(v)
            return Col("num", segment_reduce(np.ascontiguousarray(flat, dtype=np.float64), offsets, _OPS[name]))
        rows = _rows_of(ev, v, arg)
        if isinstance(rows, np.ndarray):
            if rows.shape[1] == 0:
                return Col("num", np.full(len(rows), empty))
            return Col("num", fn(rows, axis=1))
        return Col("num", np.array([fn(x) if x.size else empty for x in rows]))
    f.__name__ = name
    return f


def _contains(ev, node, target, value_node):
    v = ev.eval(target)
    value = ev.eval(value_node)
    if not isinstance(v, Col) or isinstance(value, Col):
        raise ev.fail(node, "contains(tensor, value) takes a tensor and a literal value")
    if v.kind == "str":
        if not isinstance(value, str):
            raise ev.fail(value_node, "contains() on text looks for a string")
        return Col("num", np.array([value in s for s in v.data], dtype=bool))
    if v.kind == "obj":
        return Col("num", np.array([value in x if isinstance(x, (list, dict, str)) else False for x in v.data]))
    if isinstance(value, str):
        value = ev._labels(v, value, value_node)
    if v.kind == "csr":
        flat, offsets = _flat(v)
        return Col("num", segment_bool((flat == value).view(np.uint8), offsets, _ANY))
    rows = _rows_of(ev, v, target)
    if isinstance(rows, np.ndarray):
        return Col("num", (rows == value).any(axis=1))
    return Col("num", np.array([bool((x == value).any()) for x in rows], dtype=bool))


def _shape(ev, node, target):
    if isinstance(target, ast.Name):
        r = ev.reader(target)
        if r.min_shape == r.max_shape and r.seq is None and not r.tiles:
            return Col("num", np.tile(np.array(r.min_shape, np.int64), (ev.n, 1)))
        col = ev.column(target) if not r.sample_compression else None
        if col is not None and col.kind == "csr":
            values, offsets = col.data
            return Col("num", np.column_stack([np.diff(offsets)] + [np.full(ev.n, d, np.int64) for d in values.shape[1:]]))
        return Col("num", _stack_shapes([r.shape_of(int(i)) for i in ev.rows]))
    v = ev.eval(target)
    if not isinstance(v, Col) or v.kind not in ("num", "ragged"):
        raise ev.fail(node, "shape() needs a numeric tensor or expression")
    if v.kind == "num":
        return Col("num", np.tile(np.array(np.asarray(v.data).shape[1:], np.int64), (ev.n, 1)))
    return Col("num", _stack_shapes([np.asarray(x).shape for x in v.data]))


def _stack_shapes(shapes):
    ndim = max((len(s) for s in shapes), default=0)
    return np.array([tuple(s) + (0,) * (ndim - len(s)) for s in shapes], np.int64).reshape(len(shapes), ndim)


def _len(ev, node, target):
    v = ev.eval(target)
    if not isinstance(v, Col):
        raise ev.fail(node, "len() needs a tensor")
    if v.kind == "str":
        return Col("num", np.array([len(s) for s in v.data], np.int64))
    if v.kind == "obj":
        return Col("num", np.array([len(x) if hasattr(x, "__len__") else 1 for x in v.data], np.int64))
    if v.kind == "csr":
        return Col("num", np.diff(v.data[1]))
    if v.kind == "ragged":
        return Col("num", np.array([np.asarray(x).shape[0] if np.asarray(x).ndim else 1 for x in v.data], np.int64))
    d = np.asarray(v.data)
    return Col("num", np.full(len(d), d.shape[1] if d.ndim > 1 else 1, np.int64))


def _any_all(kind):
    def f(ev, node, arg):
        v = ev.eval(arg)
        if not isinstance(v, Col):
            return bool(v)
        if v.kind == "num":
            d = np.asarray(v.data)
            flat = d.reshape(len(d), -1).astype(bool) if d.ndim > 1 else d.reshape(-1, 1).astype(bool)
            if kind == "any":
                return Col("num", flat.any(axis=1))
            out = flat.all(axis=1)
            return Col("num", out & (flat.shape[1] > 0) if kind == "all_strict" else out)
        if v.kind == "csr":
            flat, offsets = _flat(v)
            return Col("num", segment_bool(flat.astype(bool).view(np.uint8), offsets,
                                           {"any": _ANY, "all": _ALL, "all_strict": _ALL_STRICT}[kind]))
        if v.kind == "ragged":
            out = []
            for x in v.data:
                x = np.asarray(x, dtype=bool)
                out.append(x.any() if kind == "any" else (x.all() and (x.size > 0 or kind == "all")))
            return Col("num", np.array(out, dtype=bool))
        raise ev.fail(node, f"{kind}() needs numbers or conditions")
    return f


def _random(ev, node):
    return Col("num", np.random.default_rng(dl_random.stream("tql-random")).random(ev.n))


FUNCTIONS = {
    "contains": _contains, "shape": _shape, "len": _len, "random": _random,
    "any": _any_all("any"), "all": _any_all("all"), "all_strict": _any_all("all_strict"),
    "mean": _reduce("mean", np.mean, np.nan), "sum": _reduce("sum", np.sum, 0),
    "min": _reduce("min", np.min, np.nan), "max": _reduce("max", np.max, np.nan),
}
