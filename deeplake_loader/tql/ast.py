"""Syntax tree of a query. Every node keeps the position of its first token for error messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class Node:
    pos: int


@dataclass
class Literal(Node):
    value: Any  # int, float, str, bool


@dataclass
class Name(Node):
    name: str


@dataclass
class Index(Node):
    target: Node
    items: list  # of Node (an index) or Slice


@dataclass
class Slice(Node):
    start: Optional[Node]
    stop: Optional[Node]
    step: Optional[Node]


@dataclass
class Call(Node):
    func: str
    args: list


@dataclass
class Unary(Node):
    op: str  # '-' | 'not'
    operand: Node


@dataclass
class Binary(Node):
    op: str  # + - * / % == != < <= > >= and or
    left: Node
    right: Node


@dataclass
class InList(Node):
    target: Node
    items: list
    negate: bool = False


@dataclass
class Between(Node):
    target: Node
    low: Node
    high: Node
    negate: bool = False


@dataclass
class Weighted(Node):
    """max_weight(cond: w, ...) / sum_weight(...)."""
    kind: str  # 'max' | 'sum'
    pairs: list  # [(condition Node, weight Node)]


@dataclass
class Sample(Node):
    weights: Node  # Weighted or any numeric expression
    replace: Optional[bool] = None
    limit: Optional[int] = None


@dataclass
class Select(Node):
    columns: Optional[list]  # None for *, else [Name]
    where: Optional[Node] = None
    sample: Optional[Sample] = None
    order_by: Optional[Node] = None
    descending: bool = False
    limit: Optional[int] = None
    offset: int = 0


@dataclass
class SetOp(Node):
    op: str  # union | intersect | except
    left: Node
    right: Node
    extra: dict = field(default_factory=dict)
