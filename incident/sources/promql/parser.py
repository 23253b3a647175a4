"""A precedence-climbing parser for PromQL (Prometheus 2.42 grammar) with type checks."""

from __future__ import annotations

import re

from incident.model import Labels
from incident.sources.promql.ast import (
    COMPARISON_OPS,
    SET_OPS,
    Aggregate,
    Binary,
    Call,
    Expr,
    MatrixSelector,
    NumberLiteral,
    Paren,
    StringLiteral,
    Subquery,
    Unary,
    ValueType,
    VectorMatching,
    VectorSelector,
)
from incident.sources.promql.errors import PromQLError, position
from incident.sources.promql.lexer import Kind, Token, tokenize
from incident.sources.promql.regex import compile_anchored
from incident.sources.promql.signatures import (
    AGGREGATION_PARAMS,
    AGGREGATIONS,
    FUNCTIONS,
    UNSUPPORTED_FUNCTIONS,
)
from incident.sources.promql.storage import Matcher, MatchOp

# Binding strength, loosest first; '^' is the only right-associative operator.
PRECEDENCE = {
    "or": 1, "and": 2, "unless": 2,
    "==": 3, "!=": 3, "<=": 3, "<": 3, ">=": 3, ">": 3,
    "+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "atan2": 5, "^": 6,
}
_WORD_OPS = frozenset({"and", "or", "unless", "atan2"})
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
          "w": 7 * 86_400_000, "y": 365 * 86_400_000}
_DURATION_PART = re.compile(r"([0-9]+)(ms|[smhdwy])")
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def parse(text: str) -> Expr:
    """The syntax tree of `text`; raises PromQLError with a 'line:col: ' prefix."""
    return _Parser(text).parse()


def parse_duration(text: str) -> int:
    """Milliseconds in a PromQL duration such as '1h30m'."""
    return sum(int(n) * _UNITS[u] for n, u in _DURATION_PART.findall(text))


def type_of(expr: Expr) -> ValueType:
    """The PromQL value type an expression evaluates to."""
    match expr:
        case NumberLiteral():
            return ValueType.SCALAR
        case StringLiteral():
            return ValueType.STRING
        case VectorSelector() | Aggregate():
            return ValueType.VECTOR
        case MatrixSelector() | Subquery():
            return ValueType.MATRIX
        case Call():
            return FUNCTIONS[expr.func].returns
        case Paren() | Unary():
            return type_of(expr.expr)
        case Binary():
            both = (type_of(expr.lhs), type_of(expr.rhs))
            return ValueType.SCALAR if both == (ValueType.SCALAR,) * 2 else ValueType.VECTOR
    raise AssertionError(expr)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # ------------------------------------------------------------ token helpers

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def error(self, pos: int, message: str) -> PromQLError:
        return PromQLError(f"{position(self.text, pos)}: {message}")

    def unexpected(self, tok: Token, context: str = "") -> PromQLError:
        where = f" in {context}" if context else ""
        return self.error(tok.pos, f"unexpected {tok.describe()}{where}")

    def expect(self, kind: Kind, context: str) -> Token:
        tok = self.peek()
        if tok.kind is not kind:
            raise self.error(tok.pos, f'unexpected {tok.describe()} in {context}, '
                                      f'expected "{kind.value}"')
        return self.advance()

    def is_word(self, tok: Token, *words: str) -> bool:
        return tok.kind is Kind.IDENT and tok.text.lower() in words

    # ------------------------------------------------------------ expressions

    def parse(self) -> Expr:
        if self.peek().kind is Kind.EOF:
            raise self.error(0, "no expression found in input")
        expr = self.expr(0)
        tok = self.peek()
        if tok.kind is not Kind.EOF:
            raise self.unexpected(tok)
        return expr

    def binary_op(self, tok: Token) -> str | None:
        if tok.kind is Kind.OP and tok.text in PRECEDENCE:
            return tok.text
        if tok.kind is Kind.IDENT and tok.text.lower() in _WORD_OPS:
            return tok.text.lower()
        return None

    def expr(self, min_prec: int) -> Expr:
        lhs = self.unary()
        while True:
            tok = self.peek()
            op = self.binary_op(tok)
            if op is None or PRECEDENCE[op] < min_prec:
                return lhs
            self.advance()
            return_bool, matching = self.binary_modifiers(op, tok)
            rhs = self.expr(PRECEDENCE[op] + (op != "^"))
            lhs = self.binary(op, lhs, rhs, return_bool, matching, tok)

    def unary(self) -> Expr:
        tok = self.peek()
        if tok.kind is Kind.OP and tok.text in "+-":
            self.advance()
            # Prometheus gives unary minus the precedence of '*': only '^' binds tighter.
            operand = self.expr(PRECEDENCE["^"])
            kind = type_of(operand)
            if kind not in (ValueType.SCALAR, ValueType.VECTOR):
                raise self.error(tok.pos, "unary expression only allowed on expressions of type "
                                          f"scalar or instant vector, got {kind.described}")
            if isinstance(operand, NumberLiteral):
                value = -operand.value if tok.text == "-" else operand.value
                return NumberLiteral(value, tok.pos)
            return operand if tok.text == "+" else Unary("-", operand, tok.pos)
        return self.postfix(self.primary())

    def primary(self) -> Expr:
        tok = self.peek()
        if tok.kind is Kind.NUMBER:
            self.advance()
            text = tok.text
            value = float(int(text, 16)) if text[:2].lower() == "0x" else float(text)
            return NumberLiteral(value, tok.pos)
        if tok.kind is Kind.STRING:
            self.advance()
            return StringLiteral(tok.text, tok.pos)
        if tok.kind is Kind.LPAREN:
            self.advance()
            inner = self.expr(0)
            self.expect(Kind.RPAREN, "parenthesized expression")
            return Paren(inner, tok.pos)
        if tok.kind is Kind.LBRACE:
            return self.selector(None, tok.pos)
        if tok.kind is Kind.IDENT:
            name, lower = tok.text, tok.text.lower()
            nxt = self.peek(1)
            if lower in AGGREGATIONS and (nxt.kind is Kind.LPAREN
                                          or self.is_word(nxt, "by", "without")):
                return self.aggregate()
            if nxt.kind is Kind.LPAREN:
                return self.call()
            if lower in ("inf", "nan") and nxt.kind is not Kind.LBRACE:
                self.advance()
                return NumberLiteral(float(lower), tok.pos)
            if lower in ("by", "without", "on", "ignoring", "group_left", "group_right",
                         "bool", "offset") or lower in _WORD_OPS:
                raise self.unexpected(tok)
            self.advance()
            return self.selector(name, tok.pos)
        raise self.unexpected(tok)

    def postfix(self, expr: Expr) -> Expr:
        while True:
            tok = self.peek()
            if tok.kind is Kind.LBRACKET:
                expr = self.range_or_subquery(expr, tok)
            elif self.is_word(tok, "offset"):
                expr = self.offset(expr, tok)
            elif tok.kind is Kind.AT:
                raise self.error(tok.pos, "unsupported: @ modifier")
            else:
                return expr

    def duration(self, context: str) -> int:
        tok = self.peek()
        if tok.kind is not Kind.DURATION:
            raise self.error(tok.pos, f"unexpected {tok.describe()} in {context}, "
                                      "expected duration")
        self.advance()
        return parse_duration(tok.text)

    def range_or_subquery(self, expr: Expr, open_tok: Token) -> Expr:
        self.advance()
        range_ms = self.duration("range")
        if self.peek().kind is Kind.COLON:
            self.advance()
            step = self.duration("subquery") if self.peek().kind is Kind.DURATION else 0
            self.expect(Kind.RBRACKET, "subquery")
            kind = type_of(expr)
            if kind is not ValueType.VECTOR:
                raise self.error(open_tok.pos, "subquery is only allowed on instant vector, "
                                               f"got {kind.value}")
            return Subquery(expr, range_ms, step, 0, open_tok.pos)
        self.expect(Kind.RBRACKET, "range")
        if not isinstance(expr, VectorSelector):
            raise self.error(open_tok.pos, "ranges only allowed for vector selectors")
        if expr.offset_ms:
            raise self.error(open_tok.pos, "unexpected range after offset")
        return MatrixSelector(expr, range_ms, expr.pos)

    def offset(self, expr: Expr, tok: Token) -> Expr:
        self.advance()
        sign = 1
        nxt = self.peek()
        if nxt.kind is Kind.OP and nxt.text in "+-":
            self.advance()
            sign = -1 if nxt.text == "-" else 1
        ms = sign * self.duration("offset")
        match expr:
            case VectorSelector() if not expr.offset_ms:
                return VectorSelector(expr.name, expr.matchers, ms, expr.pos)
            case MatrixSelector() if not expr.vector.offset_ms:
                v = expr.vector
                return MatrixSelector(VectorSelector(v.name, v.matchers, ms, v.pos),
                                      expr.range_ms, expr.pos)
            case Subquery() if not expr.offset_ms:
                return Subquery(expr.expr, expr.range_ms, expr.step_ms, ms, expr.pos)
            case VectorSelector() | MatrixSelector() | Subquery():
                raise self.error(tok.pos, "offset may not be set multiple times")
        raise self.error(tok.pos, "offset modifier must be preceded by an instant vector "
                                  "selector or range vector selector or a subquery")

    # ------------------------------------------------------------ selectors

    def selector(self, name: str | None, pos: int) -> VectorSelector:
        matchers: list[Matcher] = []
        if self.peek().kind is Kind.LBRACE:
            self.advance()
            while self.peek().kind is not Kind.RBRACE:
                matchers.append(self.matcher())
                if self.peek().kind is Kind.COMMA:
                    self.advance()
                elif self.peek().kind is not Kind.RBRACE:
                    raise self.unexpected(self.peek(), "label matching")
            self.advance()
        if name is not None:
            other = next((m.value for m in matchers if m.name == "__name__"), None)
            if other is not None:
                raise self.error(pos, f'metric name must not be set twice: "{name}" or '
                                      f'"{other}"')
            matchers.insert(0, Matcher("__name__", MatchOp.EQ, name))
        elif all(m.matches(Labels()) for m in matchers):
            raise self.error(pos, "vector selector must contain at least one non-empty matcher")
        return VectorSelector(name, tuple(matchers), 0, pos)

    def matcher(self) -> Matcher:
        tok = self.peek()
        if tok.kind is not Kind.IDENT:
            raise self.unexpected(tok, "label matching")
        self.advance()
        op_tok = self.peek()
        if op_tok.kind is not Kind.OP or op_tok.text not in ("=", "!=", "=~", "!~"):
            raise self.error(op_tok.pos, f"unexpected {op_tok.describe()} in label matching, "
                                         "expected label matching operator")
        self.advance()
        val = self.peek()
        if val.kind is not Kind.STRING:
            raise self.error(val.pos, f"unexpected {val.describe()} in label matching, "
                                      "expected string")
        self.advance()
        op = MatchOp(op_tok.text)
        if op in (MatchOp.RE, MatchOp.NRE):
            try:
                compile_anchored(val.text)
            except PromQLError as exc:
                raise self.error(val.pos, str(exc)) from None
        return Matcher(tok.text, op, val.text)

    def label_list(self, context: str) -> tuple[str, ...]:
        self.expect(Kind.LPAREN, context)
        names: list[str] = []
        while self.peek().kind is not Kind.RPAREN:
            tok = self.peek()
            if tok.kind is not Kind.IDENT or not _LABEL_NAME.match(tok.text):
                raise self.unexpected(tok, context)
            names.append(self.advance().text)
            if self.peek().kind is Kind.COMMA:
                self.advance()
            elif self.peek().kind is not Kind.RPAREN:
                raise self.unexpected(self.peek(), context)
        self.advance()
        return tuple(names)

    # ------------------------------------------------------------ calls and aggregations

    def args(self, context: str) -> list[Expr]:
        self.expect(Kind.LPAREN, context)
        out: list[Expr] = []
        while self.peek().kind is not Kind.RPAREN:
            out.append(self.expr(0))
            if self.peek().kind is Kind.COMMA:
                self.advance()
                if self.peek().kind is Kind.RPAREN:
                    raise self.unexpected(self.peek(), context)
            elif self.peek().kind is not Kind.RPAREN:
                raise self.unexpected(self.peek(), context)
        self.advance()
        return out

    def call(self) -> Call:
        tok = self.advance()
        name = tok.text
        if name in UNSUPPORTED_FUNCTIONS:
            raise self.error(tok.pos, f'unsupported: function "{name}"')
        sig = FUNCTIONS.get(name)
        if sig is None:
            raise self.error(tok.pos, f'unknown function "{name}"')
        args = self.args("function call")
        want, got = len(sig.args), len(args)
        if sig.optional == -1:
            if got < want - 1:
                raise self.error(tok.pos, f"expected at least {want - 1} argument(s) in call "
                                          f'to "{name}", got {got}')
        elif not want - sig.optional <= got <= want:
            count = str(want) if not sig.optional else f"{want - sig.optional} to {want}"
            raise self.error(tok.pos, f'expected {count} argument(s) in call to "{name}", '
                                      f"got {got}")
        for i, arg in enumerate(args):
            expected = sig.args[min(i, want - 1)]
            actual = type_of(arg)
            if actual is not expected:
                raise self.error(_pos(arg), f"expected type {expected.described} in call to "
                                            f'function "{name}", got {actual.described}')
        return Call(name, tuple(args), tok.pos)

    def aggregate(self) -> Aggregate:
        tok = self.advance()
        op = tok.text.lower()
        grouping: tuple[str, ...] = ()
        without = False
        seen_grouping = False
        if self.is_word(self.peek(), "by", "without"):
            without = self.advance().text.lower() == "without"
            grouping = self.label_list("grouping opts")
            seen_grouping = True
        args = self.args("aggregation")
        if not seen_grouping and self.is_word(self.peek(), "by", "without"):
            without = self.advance().text.lower() == "without"
            grouping = self.label_list("grouping opts")
        want = 2 if op in AGGREGATION_PARAMS else 1
        if len(args) != want:
            raise self.error(tok.pos, "wrong number of arguments for aggregate expression "
                                      f"provided, expected {want}, got {len(args)}")
        param = args[0] if want == 2 else None
        expr = args[-1]
        if type_of(expr) is not ValueType.VECTOR:
            raise self.error(_pos(expr), "expected type instant vector in aggregation "
                                         f"expression, got {type_of(expr).described}")
        if param is not None and type_of(param) is not AGGREGATION_PARAMS[op]:
            raise self.error(_pos(param), f"expected type {AGGREGATION_PARAMS[op].described} "
                                          "in aggregation parameter, got "
                                          f"{type_of(param).described}")
        return Aggregate(op, expr, param, grouping, without, tok.pos)

    # ------------------------------------------------------------ binary operators

    def binary_modifiers(self, op: str, tok: Token) -> tuple[bool, VectorMatching | None]:
        return_bool = False
        if self.is_word(self.peek(), "bool"):
            if op not in COMPARISON_OPS:
                raise self.error(self.peek().pos,
                                 "bool modifier can only be used on comparison operators")
            self.advance()
            return_bool = True
        card = "many-to-many" if op in SET_OPS else "one-to-one"
        if not self.is_word(self.peek(), "on", "ignoring"):
            if self.is_word(self.peek(), "group_left", "group_right"):
                raise self.unexpected(self.peek())
            return return_bool, VectorMatching(card, (), False)
        on = self.advance().text.lower() == "on"
        labels = self.label_list("grouping opts")
        include: tuple[str, ...] = ()
        if self.is_word(self.peek(), "group_left", "group_right"):
            group_tok = self.advance()
            if op in SET_OPS:
                raise self.error(group_tok.pos, f'no grouping allowed for "{op}" operation')
            card = "many-to-one" if group_tok.text.lower() == "group_left" else "one-to-many"
            if self.peek().kind is Kind.LPAREN:
                include = self.label_list("grouping opts")
            if on:
                for name in include:
                    if name in labels:
                        raise self.error(group_tok.pos, f'label "{name}" must not occur in ON '
                                                        "and GROUP clause at once")
        return return_bool, VectorMatching(card, labels, on, include)

    def binary(self, op: str, lhs: Expr, rhs: Expr, return_bool: bool,
               matching: VectorMatching | None, tok: Token) -> Binary:
        lt, rt = type_of(lhs), type_of(rhs)
        ok = (ValueType.SCALAR, ValueType.VECTOR)
        if lt not in ok or rt not in ok:
            raise self.error(tok.pos, "binary expression must contain only scalar and instant "
                                      "vector types")
        scalar_side = ValueType.SCALAR in (lt, rt)
        if op in SET_OPS and scalar_side:
            raise self.error(tok.pos, f'set operator "{op}" not allowed in binary scalar '
                                      "expression")
        if lt is rt is ValueType.SCALAR and op in COMPARISON_OPS and not return_bool:
            raise self.error(tok.pos, "comparisons between scalars must use BOOL modifier")
        assert matching is not None
        if scalar_side and (matching.on or matching.labels or matching.card != "one-to-one"):
            raise self.error(tok.pos, "vector matching only allowed between instant vectors")
        return Binary(op, lhs, rhs, return_bool, None if scalar_side else matching, tok.pos)


def _pos(expr: Expr) -> int:
    return expr.vector.pos if isinstance(expr, MatrixSelector) else expr.pos
