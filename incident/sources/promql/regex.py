"""Go RE2 regular expressions (what Prometheus uses) translated to Python's `re`.

Both agree on the common syntax; this rewrites what differs (ASCII-only \\d \\w \\s, POSIX
classes, \\z, \\Q…\\E) and refuses what RE2 does not accept (lookaround, backreferences) or
Python cannot express (\\p{…}, (?U)), so a matcher never silently means something else.
"""

from __future__ import annotations

import functools
import re

from incident.sources.promql.errors import PromQLError

_POSIX = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z",
    "print": " -~", "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z",
    "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}
_PERL = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}
_REFUSED = (("(?=", "lookahead"), ("(?!", "lookahead"), ("(?<=", "lookbehind"),
            ("(?<!", "lookbehind"), ("(?>", "atomic group"), ("(?(", "conditional"))


def translate(pattern: str) -> str:
    """The Python equivalent of a Go RE2 pattern; PromQLError if there is none."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if not in_class:
            for prefix, what in _REFUSED:
                if pattern.startswith(prefix, i):
                    raise PromQLError(f"invalid regular expression {pattern!r}: {what} is not "
                                      "supported by Prometheus (RE2)")
            if pattern.startswith("(?", i) and "U" in pattern[i + 2:pattern.find(")", i)].split(
                    ":")[0]:
                raise PromQLError(f"unsupported: regular expression flag U in {pattern!r}")
        if c == "\\" and i + 1 < n:
            e = pattern[i + 1]
            if e in "123456789":
                raise PromQLError(f"invalid regular expression {pattern!r}: backreferences "
                                  "are not supported by Prometheus (RE2)")
            if e in "pP":
                raise PromQLError(f"unsupported: Unicode class \\{e} in regular expression "
                                  f"{pattern!r}")
            if e == "z":
                out.append("\\Z")
            elif e == "Q":
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2:] if end < 0 else pattern[i + 2:end]
                out.append(re.escape(literal))
                i = n if end < 0 else end + 2
                continue
            elif e.lower() in _PERL:
                body = _PERL[e.lower()]
                if in_class:
                    if e.isupper():
                        raise PromQLError(f"unsupported: \\{e} inside a character class in "
                                          f"{pattern!r}")
                    out.append(body)
                else:
                    out.append(f"[{'^' if e.isupper() else ''}{body}]")
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class and pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            name = pattern[i + 2:end] if end > 0 else ""
            negated = name.startswith("^")
            if name.lstrip("^") in _POSIX:
                if negated:
                    raise PromQLError(f"unsupported: negated POSIX class in {pattern!r}")
                out.append(_POSIX[name])
                i = end + 2
                continue
        if c == "[" and not in_class:
            in_class = True
            out.append(c)
            i += 1
            # A ']' right after '[' or '[^' is a literal in both dialects.
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):
                out.append("\\]")
                i += 1
            continue
        if c == "]" and in_class:
            in_class = False
        elif c == "[" and in_class:
            out.append("\\[")  # Python warns on a nested '[' (future set syntax)
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def compile_anchored(pattern: str) -> re.Pattern[str]:
    """The fully anchored pattern as Prometheus 2.42 builds it: ^(?:pattern)$, '.' not '\\n'."""
    body = translate(pattern)
    # Go scopes a leading (?i) to the group; Python wants global flags first, outside it.
    flags = re.match(r"\(\?[imsx]+\)", body)
    head = flags.group() if flags else ""
    try:
        return re.compile(f"{head}(?:{body[len(head):]})\\Z")
    except re.error as exc:
        raise PromQLError(f"invalid regular expression {pattern!r}: {exc}") from None
