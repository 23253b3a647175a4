"""The PromQL parser: trees for precedence and modifiers, and exact error messages."""

from __future__ import annotations

import pytest

from incident.sources.promql import PromQLError, parse
from incident.sources.promql.ast import (
    Aggregate,
    Binary,
    Call,
    MatrixSelector,
    NumberLiteral,
    Subquery,
    Unary,
    VectorSelector,
)
from incident.sources.promql.storage import Matcher, MatchOp


def _shape(e: object) -> str:
    """A compact rendering of a tree that shows grouping only."""
    match e:
        case NumberLiteral():
            return f"{e.value:g}"
        case VectorSelector():
            return e.name or "{}"
        case Binary():
            return f"({_shape(e.lhs)} {e.op} {_shape(e.rhs)})"
        case Unary():
            return f"(-{_shape(e.expr)})"
        case Call():
            return f"{e.func}(" + ", ".join(_shape(a) for a in e.args) + ")"
        case Aggregate():
            return f"{e.op}({_shape(e.expr)})"
        case MatrixSelector():
            return f"{_shape(e.vector)}[{e.range_ms}]"
    return type(e).__name__


@pytest.mark.parametrize(("text", "shape"), [
    ("a + b * c", "(a + (b * c))"),
    ("a - b - c", "((a - b) - c)"),
    ("a ^ b ^ c", "(a ^ (b ^ c))"),
    ("-a ^ b", "(-(a ^ b))"),
    ("-a * b", "((-a) * b)"),
    ("-2 ^ 2", "(-(2 ^ 2))"),
    ("a or b and c", "(a or (b and c))"),
    ("a and b unless c", "((a and b) unless c)"),
    ("a > b + 1", "(a > (b + 1))"),
    ("a == b or c", "((a == b) or c)"),
    ("a % b / c", "((a % b) / c)"),
    ("a atan2 b * c", "((a atan2 b) * c)"),
    ("-1", "-1"),
    ("+a", "a"),
    ("0x1F + 1e3", "(31 + 1000)"),
    ("Inf - nan", "(inf - nan)"),
    ("sum(rate(x[5m])) by (job)", "sum(rate(x[300000]))"),
])
def test_precedence_and_associativity(text: str, shape: str) -> None:
    """Operators group as in Prometheus: ^ is right-associative and binds tighter than unary minus."""
    assert _shape(parse(text)) == shape


def test_selector_matchers_and_offset() -> None:
    """A selector carries its name as an __name__ matcher, all four operators, and a negative offset."""
    e = parse('x{a="1", b!="2", c=~"3.*", d!~"4"} offset -5m')
    assert isinstance(e, VectorSelector)
    assert e.matchers == (
        Matcher("__name__", MatchOp.EQ, "x"), Matcher("a", MatchOp.EQ, "1"),
        Matcher("b", MatchOp.NE, "2"), Matcher("c", MatchOp.RE, "3.*"),
        Matcher("d", MatchOp.NRE, "4"),
    )
    assert e.offset_ms == -300_000


def test_subquery_with_default_step_and_offset() -> None:
    """`expr[1h:]` is a subquery with step 0 (the default interval) and its own offset."""
    e = parse("max_over_time(rate(x[5m])[1h:] offset 10m)")
    assert isinstance(e, Call)
    sq = e.args[0]
    assert isinstance(sq, Subquery)
    assert (sq.range_ms, sq.step_ms, sq.offset_ms) == (3_600_000, 0, 600_000)


def test_vector_matching_modifiers() -> None:
    """on/ignoring and group_left/group_right with extra labels are recorded on the node."""
    e = parse("a * ignoring(x, y) group_right(z) b")
    assert isinstance(e, Binary) and e.matching is not None
    assert (e.matching.card, e.matching.on, e.matching.labels, e.matching.include) == (
        "one-to-many", False, ("x", "y"), ("z",))


def test_string_escapes() -> None:
    """Double, single and back-quoted strings decode Go escapes (raw strings keep them)."""
    e = parse('label_join(x, "d", "\\t\\u00e9\\x41", \'a\\\'b\', `c\\n`)')
    assert isinstance(e, Call)
    assert [a.value for a in e.args[2:]] == ["\téA", "a'b", "c\\n"]  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "message"), [
    ("rat(x[5m])", '1:1: unknown function "rat"'),
    ("sum(\n  rat(x[5m]))", '2:3: unknown function "rat"'),
    ("rate(x[5m]) @ 100", "1:13: unsupported: @ modifier"),
    ("histogram_count(x)", '1:1: unsupported: function "histogram_count"'),
    ("rate(x)", '1:6: expected type range vector in call to function "rate", got instant vector'),
    ("sum(x[5m])",
     "1:5: expected type instant vector in aggregation expression, got range vector"),
    ("rate(x[5m], 1)", '1:1: expected 1 argument(s) in call to "rate", got 2'),
    ("round(x, 1, 2)", '1:1: expected 1 to 2 argument(s) in call to "round", got 3'),
    ("label_join(x)", '1:1: expected at least 3 argument(s) in call to "label_join", got 1'),
    ("topk(x)",
     "1:1: wrong number of arguments for aggregate expression provided, expected 2, got 1"),
    ("count_values(1, x)", "1:14: expected type string in aggregation parameter, got scalar"),
    ("1 > 2", "1:3: comparisons between scalars must use BOOL modifier"),
    ("1 and x", '1:3: set operator "and" not allowed in binary scalar expression'),
    ("x + bool y", "1:5: bool modifier can only be used on comparison operators"),
    ("x and on(a) group_left y", '1:13: no grouping allowed for "and" operation'),
    ("x + on(a) group_left(a) y", '1:11: label "a" must not occur in ON and GROUP clause at once'),
    ("x[5m] + 1", "1:7: binary expression must contain only scalar and instant vector types"),
    ("time()[5m:1m]", "1:7: subquery is only allowed on instant vector, got scalar"),
    ("sum(x)[5m]", "1:7: ranges only allowed for vector selectors"),
    ("(x) offset 5m", "1:5: offset modifier must be preceded by an instant vector selector or "
                      "range vector selector or a subquery"),
    ("x offset 5m offset 1m", "1:13: offset may not be set multiple times"),
    ("x offset 5", '1:10: unexpected number "5" in offset, expected duration'),
    ("foo[5m", '1:7: unexpected end of input in range, expected "]"'),
    ('x{a="1"', "1:8: unexpected end of input in label matching"),
    ("x{a=1}", '1:5: unexpected number "1" in label matching, expected string'),
    ("1 +", "1:4: unexpected end of input"),
    ("x)", '1:2: unexpected ")"'),
    ("5m", '1:1: unexpected duration "5m"'),
    ("1x", '1:1: bad number or duration syntax: "1x"'),
    ("", "1:1: no expression found in input"),
    ('x{a="\\q"}', "1:6: unknown escape sequence '\\q'"),
    ('x{a="open}', "1:5: unterminated quoted string"),
    ('x{a=~"(?=b)"}', "1:6: invalid regular expression '(?=b)': lookahead is not supported "
                      "by Prometheus (RE2)"),
    ("x{a=~`\\pL`}", "1:6: unsupported: Unicode class \\p in regular expression '\\\\pL'"),
    ('{a=""}', "1:1: vector selector must contain at least one non-empty matcher"),
    ('foo{__name__="bar"}', '1:1: metric name must not be set twice: "foo" or "bar"'),
    ('-"a"', "1:1: unary expression only allowed on expressions of type scalar or instant "
             "vector, got string"),
])
def test_parse_error_messages(text: str, message: str) -> None:
    """Bad queries raise PromQLError with 'line:col: ' pointing at the offending token."""
    with pytest.raises(PromQLError) as caught:
        parse(text)
    assert str(caught.value) == message
