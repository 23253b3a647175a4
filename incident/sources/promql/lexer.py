"""Turns PromQL text into tokens; durations are lexed only where PromQL allows them."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from incident.sources.promql.errors import PromQLError, position


class Kind(enum.Enum):
    IDENT = "identifier"
    NUMBER = "number"
    DURATION = "duration"
    STRING = "string"
    OP = "operator"
    LPAREN = "("
    RPAREN = ")"
    LBRACE = "{"
    RBRACE = "}"
    LBRACKET = "["
    RBRACKET = "]"
    COMMA = ","
    COLON = ":"
    AT = "@"
    EOF = "end of input"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str
    pos: int

    def describe(self) -> str:
        """How an error message names this token."""
        if self.kind is Kind.EOF:
            return "end of input"
        if self.kind in (Kind.IDENT, Kind.NUMBER, Kind.DURATION, Kind.STRING, Kind.OP):
            return f'{self.kind.value} "{self.text}"'
        return f'"{self.text}"'


_DURATION = re.compile(r"(?:[0-9]+(?:ms|[smhdwy]))+(?![A-Za-z0-9_.])")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_METRIC = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
# Longest first, so that '=~' is not read as '=' then '~'.
_OPS = ("==", "!=", ">=", "<=", "=~", "!~", "+", "-", "*", "/", "%", "^", ">", "<", "=")
_SINGLE = {
    "(": Kind.LPAREN, ")": Kind.RPAREN, "{": Kind.LBRACE, "}": Kind.RBRACE,
    "[": Kind.LBRACKET, "]": Kind.RBRACKET, ",": Kind.COMMA, "@": Kind.AT,
}
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\"}


def tokenize(text: str) -> list[Token]:
    """All tokens of `text`, ending with an EOF token; raises PromQLError on bad input."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    brackets = 0  # inside [...] a ':' separates a subquery range from its step
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
            continue
        if c == "#":  # a comment runs to the end of the line
            while i < n and text[i] != "\n":
                i += 1
            continue
        if c in _SINGLE:
            brackets += (c == "[") - (c == "]")
            tokens.append(Token(_SINGLE[c], c, i))
            i += 1
            continue
        if c == ":" and brackets:
            tokens.append(Token(Kind.COLON, c, i))
            i += 1
            continue
        if c in "\"'`":
            value, end = _string(text, i)
            tokens.append(Token(Kind.STRING, value, i))
            i = end
            continue
        if c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            m = _DURATION.match(text, i)
            if m:
                tokens.append(Token(Kind.DURATION, m.group(), i))
                i = m.end()
                continue
            m = _NUMBER.match(text, i)
            assert m is not None
            if m.end() < n and (text[m.end()].isalnum() or text[m.end()] == "_"):
                raise PromQLError(f"{position(text, i)}: bad number or duration syntax: "
                                  f'"{text[i:m.end() + 1]}"')
            tokens.append(Token(Kind.NUMBER, m.group(), i))
            i = m.end()
            continue
        m = (_IDENT if brackets else _METRIC).match(text, i)
        if m:
            tokens.append(Token(Kind.IDENT, m.group(), i))
            i = m.end()
            continue
        op = next((o for o in _OPS if text.startswith(o, i)), None)
        if op is not None:
            tokens.append(Token(Kind.OP, op, i))
            i += len(op)
            continue
        raise PromQLError(f"{position(text, i)}: unexpected character: {c!r}")
    tokens.append(Token(Kind.EOF, "", n))
    return tokens


def _string(text: str, start: int) -> tuple[str, int]:
    """The value of the quoted string at `start` (Go escapes) and the offset just past it."""
    quote = text[start]
    i, n = start + 1, len(text)
    if quote == "`":  # raw string: no escapes
        end = text.find("`", i)
        if end < 0:
            raise PromQLError(f"{position(text, start)}: unterminated raw string")
        return text[i:end], end + 1
    out: list[str] = []
    while i < n:
        c = text[i]
        if c == quote:
            return "".join(out), i + 1
        if c == "\n":
            break
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            break
        e = text[i + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e == quote:
            out.append(e)
            i += 2
        elif e in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[e]
            digits = text[i + 2:i + 2 + width]
            if len(digits) != width or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise PromQLError(f"{position(text, i)}: invalid escape sequence in string")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif e in "01234567":
            digits = text[i + 1:i + 4]
            if len(digits) != 3 or not all(d in "01234567" for d in digits):
                raise PromQLError(f"{position(text, i)}: invalid escape sequence in string")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise PromQLError(f"{position(text, i)}: unknown escape sequence '\\{e}'")
    raise PromQLError(f"{position(text, start)}: unterminated quoted string")
