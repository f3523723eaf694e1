"""A small Pratt parser: query text -> syntax tree (see docs/TQL.md for the grammar).

Linear in the query's length: one token of look-ahead, no backtracking; chains of operators at one
level (``a and b and c ...``, ``x + y - z ...``, ``q1 union q2 union ...``) are built by loops, not
recursion. Only nesting recurses (parentheses, NOT, unary minus, calls, indexes, operands of
tighter-binding operators), and it is bounded: a query that nests more than ``MAX_DEPTH`` levels
is a TQLError pointing at the token where the limit is crossed, never a RecursionError.
"""

from __future__ import annotations

from . import ast
from .lexer import UNSUPPORTED, error, tokenize

_BINARY = {"or": 1, "and": 2, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "in": 4, "between": 4,
           "+": 5, "-": 5, "*": 6, "/": 6, "%": 6}
_NOT_PREC = 3
_UNARY_PREC = 7
_SET_OPS = ("union", "intersect", "except")
MAX_DEPTH = 100  # nesting levels; each costs at most 4 Python frames here and 4 in the evaluator


class Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    def _nest(self):
        """One level deeper (a sub-query or sub-expression); TQLError past MAX_DEPTH."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"the query nests more than {MAX_DEPTH} levels deep (parentheses, NOT, unary minus, "
                            "function calls, operands of operators); write it flatter")

    # --------------------------------------------------------------------------------- tokens
    @property
    def tok(self):
        return self.tokens[self.i]

    def advance(self):
        t = self.tokens[self.i]
        self.i += 1
        return t

    def at(self, kind, value=None) -> bool:
        t = self.tok
        return t.kind == kind and (value is None or t.value == value)

    def accept(self, kind, value=None):
        if self.at(kind, value):
            return self.advance()
        return None

    def expect(self, kind, value=None, what=None):
        if not self.at(kind, value):
            raise self.fail(f"expected {what or value or kind}, found {self.describe(self.tok)}")
        return self.advance()

    def describe(self, t) -> str:
        if t.kind == "end":
            return "the end of the query"
        return repr(t.value) if t.kind != "string" else f"string '{t.value}'"

    def fail(self, message, pos=None):
        return error(self.text, self.tok.pos if pos is None else pos, message)

    def unsupported(self, t):
        name = str(t.value).lower()
        if t.kind in ("name", "keyword") and name in UNSUPPORTED:
            return error(self.text, t.pos, f"{UNSUPPORTED[name]} is not supported by deeplake_loader's query "
                                           "language (see docs/TQL.md)")
        return None

    # -------------------------------------------------------------------------------- queries
    def parse_query(self):
        node = self._query()
        if not self.at("end"):
            raise self.unsupported(self.tok) or self.fail(f"unexpected {self.describe(self.tok)}")
        return node

    def _query(self):
        self._nest()
        left = self._query_term()
        while self.tok.kind == "keyword" and self.tok.value in _SET_OPS:
            op = self.advance()
            right = self._query_term()
            left = ast.SetOp(op.pos, op.value, left, right)
        self.depth -= 1
        return left

    def _query_term(self):
        if self.at("op", "("):
            self.advance()
            node = self._query()
            self.expect("op", ")", "')'")
            return node
        return self._select()

    def _select(self):
        start = self.expect("keyword", "select", "SELECT")
        columns = None
        if not self.accept("op", "*"):
            columns = [self._column()]
            while self.accept("op", ","):
                columns.append(self._column())
        node = ast.Select(start.pos, columns)
        if self.accept("keyword", "from"):
            if self.at("op", "("):
                raise self.fail("sub-queries in FROM are not supported; use (select ...) union (select ...)")
            self.expect("name", what="a dataset name after FROM")
        if self.accept("keyword", "where"):
            node.where = self.expression()
        if self.at("keyword", "sample"):
            node.sample = self._sample_clause()
        if self.at("keyword", "order"):
            self.advance()
            self.expect("keyword", "by", "BY after ORDER")
            node.order_by = self.expression()
            if self.accept("keyword", "desc"):
                node.descending = True
            else:
                self.accept("keyword", "asc")
        if self.accept("keyword", "limit"):
            node.limit = self._count("LIMIT")
            if self.accept("keyword", "offset"):
                node.offset = self._count("OFFSET")
        if not self.at("end") and not self.at("op", ")") and not (self.tok.kind == "keyword" and self.tok.value
                                                                     in _SET_OPS):
            raise self.unsupported(self.tok) or self.fail(f"unexpected {self.describe(self.tok)} in SELECT")
        return node

    def _column(self):
        t = self.tok
        if t.kind != "name":
            raise self.unsupported(t) or self.fail("expected a tensor name or * after SELECT "
                                                   "(computed columns are not supported)")
        self.advance()
        if self.at("op", "(") or self.at("op", "["):
            raise self.fail("computed columns are not supported in SELECT; select tensors by name", t.pos)
        return ast.Name(t.pos, t.value)

    def _count(self, what) -> int:
        t = self.expect("number", what=f"a whole number after {what}")
        if not isinstance(t.value, int):
            raise error(self.text, t.pos, f"{what} needs a whole number, got {t.value}")
        return t.value

    def _sample_clause(self):
        start = self.advance()
        self.expect("keyword", "by", "BY after SAMPLE")
        node = self.sample_expression(start.pos)
        if self.accept("keyword", "replace"):
            t = self.tok
            if not (self.accept("keyword", "true") or self.accept("keyword", "false")):
                raise self.fail("expected true or false after REPLACE")
            node.replace = t.value == "true"
        if self.accept("keyword", "limit"):  # a LIMIT right after SAMPLE BY is the sample size
            node.limit = self._count("LIMIT")
        return node

    def sample_expression(self, pos=None):
        """max_weight(cond: w, ...) | sum_weight(...) | a numeric expression (e.g. a tensor name)."""
        t = self.tok
        if t.kind == "name" and t.value.lower() in ("max_weight", "sum_weight") and \
                self.tokens[self.i + 1].kind == "op" and self.tokens[self.i + 1].value == "(":
            self.advance()
            self.advance()
            pairs = []
            while True:
                cond = self.expression()
                self.expect("op", ":", "':' between a condition and its weight")
                weight = self.expression()
                pairs.append((cond, weight))
                if not self.accept("op", ","):
                    break
            self.expect("op", ")", "')'")
            weights = ast.Weighted(t.pos, t.value.lower()[:3], pairs)
        else:
            weights = self.expression()
        return ast.Sample(t.pos if pos is None else pos, weights)

    # ---------------------------------------------------------------------------- expressions
    def expression(self, min_prec: int = 0):
        self._nest()
        left = self._expression(min_prec)
        self.depth -= 1
        return left

    def _expression(self, min_prec):
        left = self._prefix()
        while True:
            t = self.tok
            negate = False
            if t.kind == "keyword" and t.value == "not" and self.tokens[self.i + 1].kind == "keyword" and \
                    self.tokens[self.i + 1].value in ("in", "between"):
                op, negate = self.tokens[self.i + 1].value, True
            elif t.kind in ("op", "keyword") and t.value in _BINARY:
                op = t.value
            else:
                break
            prec = _BINARY[op]
            if prec <= min_prec:
                break
            self.advance()
            if negate:
                self.advance()
            if op == "in":
                left = ast.InList(t.pos, left, self._in_items(), negate)
            elif op == "between":
                low = self.expression(_BINARY["+"] - 1)
                self.expect("keyword", "and", "AND in BETWEEN ... AND ...")
                high = self.expression(_BINARY["+"] - 1)
                left = ast.Between(t.pos, left, low, high, negate)
            else:
                left = ast.Binary(t.pos, op, left, self.expression(prec))
        return left

    def _in_items(self):
        self.expect("op", "(", "'(' after IN")
        items = [self.expression()]
        while self.accept("op", ","):
            items.append(self.expression())
        self.expect("op", ")", "')'")
        return items

    def _prefix(self):
        t = self.tok
        if t.kind == "number":
            self.advance()
            node = ast.Literal(t.pos, t.value)
        elif t.kind == "string":
            self.advance()
            node = ast.Literal(t.pos, t.value)
        elif t.kind == "keyword" and t.value in ("true", "false"):
            self.advance()
            node = ast.Literal(t.pos, t.value == "true")
        elif t.kind == "keyword" and t.value == "not":
            self.advance()
            return ast.Unary(t.pos, "not", self.expression(_NOT_PREC))
        elif t.kind == "op" and t.value in ("-", "+"):
            self.advance()
            operand = self.expression(_UNARY_PREC)
            return operand if t.value == "+" else ast.Unary(t.pos, "-", operand)
        elif t.kind == "op" and t.value == "(":
            self.advance()
            if self.at("keyword", "select"):
                raise self.fail("sub-queries inside expressions are not supported")
            node = self.expression()
            self.expect("op", ")", "')'")
        elif t.kind == "name":
            self.advance()
            if self.at("op", "("):
                bad = self.unsupported(t)
                if bad:
                    raise bad
                node = ast.Call(t.pos, t.value.lower(), self._call_args())
            else:
                bad = self.unsupported(t)
                if bad and t.value.lower() == "array":
                    raise bad
                node = ast.Name(t.pos, t.value)
        else:
            raise self.unsupported(t) or self.fail(f"expected a value, found {self.describe(t)}")
        while self.at("op", "["):
            node = ast.Index(self.advance().pos, node, self._index_items())
        return node

    def _call_args(self):
        self.expect("op", "(")
        args = []
        if not self.accept("op", ")"):
            args.append(self.expression())
            while self.accept("op", ","):
                args.append(self.expression())
            self.expect("op", ")", "')' or ','")
        return args

    def _index_items(self):
        items = [self._index_item()]
        while self.accept("op", ","):
            items.append(self._index_item())
        self.expect("op", "]", "']'")
        return items

    def _index_item(self):
        pos = self.tok.pos
        parts, current = [], None
        while True:
            if self.at("op", ":"):
                parts.append(current)
                current = None
                self.advance()
                continue
            if self.at("op", ",") or self.at("op", "]"):
                parts.append(current)
                break
            if current is not None:
                raise self.fail("expected ':' , ',' or ']' in an index")
            current = self.expression()
        if len(parts) == 1:
            if parts[0] is None:
                raise self.fail("empty index", pos)
            return parts[0]
        if len(parts) > 3:
            raise error(self.text, pos, "a slice has at most start:stop:step")
        parts += [None] * (3 - len(parts))
        return ast.Slice(pos, *parts)


def _guarded(fn, p):
    """fn() with a RecursionError (a caller already deep in the Python stack) as a TQLError."""
    try:
        return fn()
    except RecursionError:
        raise p.fail("the query nests too deeply for the Python stack left to parse it; write it flatter") from None


def parse(text: str):
    p = Parser(text)
    return _guarded(p.parse_query, p)


def parse_sample(text: str):
    """The string form of sample_by: a weight expression, or a whole query with SAMPLE BY."""
    p = Parser(text)
    if p.at("keyword", "select") or p.at("op", "("):
        return _guarded(p.parse_query, p)
    node = _guarded(p.sample_expression, p)
    if not p.at("end"):
        raise p.unsupported(p.tok) or p.fail(f"unexpected {p.describe(p.tok)}")
    return node
