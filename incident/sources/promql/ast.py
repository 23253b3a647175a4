"""The syntax tree: frozen dataclasses, one per PromQL construct. Times are integer milliseconds."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from incident.sources.promql.storage import Matcher


class ValueType(enum.StrEnum):
    SCALAR = "scalar"
    VECTOR = "vector"
    MATRIX = "matrix"
    STRING = "string"

    @property
    def described(self) -> str:
        """The name Prometheus uses in type errors: 'instant vector', 'range vector', …"""
        return {"vector": "instant vector", "matrix": "range vector"}.get(self.value, self.value)


@dataclass(frozen=True, slots=True)
class NumberLiteral:
    value: float
    pos: int = 0


@dataclass(frozen=True, slots=True)
class StringLiteral:
    value: str
    pos: int = 0


@dataclass(frozen=True, slots=True)
class VectorSelector:
    name: str | None
    matchers: tuple[Matcher, ...]
    offset_ms: int = 0
    pos: int = 0


@dataclass(frozen=True, slots=True)
class MatrixSelector:
    vector: VectorSelector
    range_ms: int
    pos: int = 0


@dataclass(frozen=True, slots=True)
class Subquery:
    expr: Expr
    range_ms: int
    step_ms: int  # 0: the default evaluation interval
    offset_ms: int = 0
    pos: int = 0


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    pos: int = 0


@dataclass(frozen=True, slots=True)
class Aggregate:
    op: str
    expr: Expr
    param: Expr | None
    grouping: tuple[str, ...]
    without: bool
    pos: int = 0


@dataclass(frozen=True, slots=True)
class VectorMatching:
    card: str  # "one-to-one" | "many-to-one" | "one-to-many" | "many-to-many"
    labels: tuple[str, ...]
    on: bool
    include: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    lhs: Expr
    rhs: Expr
    return_bool: bool = False
    matching: VectorMatching | None = None
    pos: int = 0


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    expr: Expr
    pos: int = 0


@dataclass(frozen=True, slots=True)
class Paren:
    expr: Expr
    pos: int = 0


Expr = (
    NumberLiteral | StringLiteral | VectorSelector | MatrixSelector | Subquery | Call | Aggregate
    | Binary | Unary | Paren
)

COMPARISON_OPS = frozenset({"==", "!=", ">", "<", ">=", "<="})
SET_OPS = frozenset({"and", "or", "unless"})
ARITHMETIC_OPS = frozenset({"+", "-", "*", "/", "%", "^", "atan2"})


def selectors(node: object) -> list[VectorSelector]:
    """Every vector selector in a syntax tree, in reading order (ranges and subqueries too)."""
    import dataclasses

    if isinstance(node, VectorSelector):
        return [node]
    if isinstance(node, tuple | list):
        return [s for item in node for s in selectors(item)]
    if dataclasses.is_dataclass(node):
        return [s for f in dataclasses.fields(node) for s in selectors(getattr(node, f.name))]
    return []
