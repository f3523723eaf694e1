"""Tokens of the query language. Keywords are case-insensitive; names may hold group paths
(``grp/x``); strings use single or double quotes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import TQLError

KEYWORDS = {
    "select", "from", "where", "order", "by", "asc", "desc", "limit", "offset", "union", "intersect", "except",
    "and", "or", "not", "in", "between", "sample", "replace", "true", "false", "as",
}
# TQL constructs outside our subset: named in the error instead of a confusing syntax error
UNSUPPORTED = {
    "group": "GROUP BY", "ungroup": "UNGROUP BY", "expand": "EXPAND BY", "join": "JOIN", "having": "HAVING",
    "l2_norm": "vector similarity (l2_norm)", "l1_norm": "vector similarity (l1_norm)",
    "linf_norm": "vector similarity (linf_norm)", "cosine_similarity": "vector similarity (cosine_similarity)",
    "bm25_similarity": "text similarity (bm25_similarity)", "array": "ARRAY[...] literals",
}

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>==|!=|<>|<=|>=|[-+*/%<>=(),:\[\]])
""", re.VERBOSE)


@dataclass
class Token:
    kind: str  # number | string | name | keyword | op | end
    value: object
    pos: int


def error(text: str, pos: int, message: str) -> TQLError:
    """A TQLError with the query and a caret under the position."""
    pos = max(0, min(pos, len(text)))
    return TQLError(f"{message} (at position {pos})\n    {text}\n    {' ' * pos}^")


def tokenize(text: str) -> list:
    if not isinstance(text, str):
        raise TQLError(f"a query must be a str, got {type(text).__name__}")
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise error(text, pos, f"unexpected character {text[pos]!r}")
        kind = m.lastgroup
        raw = m.group()
        if kind == "number":
            out.append(Token("number", float(raw) if any(c in raw for c in ".eE") else int(raw), pos))
        elif kind == "string":
            body = raw[1:-1]
            if raw[0] == "'":
                body = body.replace("''", "'")
            body = re.sub(r"\\(.)", r"\1", body)
            out.append(Token("string", body, pos))
        elif kind == "name":
            low = raw.lower()
            if low in KEYWORDS:
                out.append(Token("keyword", low, pos))
            else:
                out.append(Token("name", raw, pos))
        elif kind == "op":
            out.append(Token("op", {"=": "==", "<>": "!="}.get(raw, raw), pos))
        pos = m.end()
    out.append(Token("end", None, len(text)))
    return out
