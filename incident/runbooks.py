"""Runbooks: steps from the Markdown body, lint, search, and step state from an incident's timeline.

Front matter is YAML and so is read by `config`; this module only reads Markdown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from incident.model import Check, EventKind, Incident, Runbook, Step, TimelineEvent

_ITEM = re.compile(r"^(?P<indent> *)(?P<number>\d+)[.)](?:\s+(?P<text>.*))?$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def parse_steps(body: str) -> tuple[Step, ...]:
    """The numbered list items of `body` as steps; nested numbered items become 2.1, 2.2 ….

    Numbered lines inside fenced code blocks are code, not steps; a step's body keeps
    everything that belongs to it (paragraphs, code blocks, sub-lists) without its indent.
    """
    steps: list[Step] = []
    lines = body.splitlines()
    in_fence = False
    # the open steps, outermost first: (number, content indent, first line, body lines)
    stack: list[tuple[str, int, str, list[str]]] = []
    top_count = 0

    def close(depth: int) -> None:
        while len(stack) > depth:
            number, _, text, body_lines = stack.pop()
            steps.append(Step(number=number, text=text, body=_dedent(body_lines)))

    for line in lines:
        if _FENCE.match(line):
            in_fence = not in_fence
            for entry in stack:
                entry[3].append(line)
            continue
        m = None if in_fence else _ITEM.match(line)
        if m:
            indent = len(m.group("indent"))
            depth = sum(1 for _, content, _, _ in stack if indent >= content)
            if depth == 0 and indent > 3:
                m = None  # an indented code block, not a list
        if m:
            close(depth)
            text = (m.group("text") or "").strip()
            content = indent + len(m.group("number")) + 2
            if depth == 0:
                top_count += 1
                number = str(top_count)
            else:
                parent = stack[-1][0]
                siblings = sum(1 for s in steps if s.number.rsplit(".", 1)[0] == parent
                               and s.number.count(".") == parent.count(".") + 1)
                number = f"{parent}.{siblings + 1}"
            for entry in stack:
                entry[3].append(line)
            stack.append((number, content, text, [" " * content + text]))
            continue
        if stack and not in_fence and line.strip() and _indent(line) < stack[0][1] \
                and not line.startswith(" "):
            close(0)  # a paragraph or heading at the margin ends the list
            continue
        for entry in stack:
            entry[3].append(line)
    close(0)
    return tuple(sorted((Step(number=s.number, text=_first_paragraph(s.body) or s.text,
                              body=s.body) for s in steps),
                        key=lambda s: [int(p) for p in s.number.split(".")]))


def _first_paragraph(body: str) -> str:
    """A step's title: its first paragraph on one line, up to a blank line, list or code."""
    words: list[str] = []
    for line in body.splitlines():
        if not line.strip() or _ITEM.match(line) or _FENCE.match(line) or line.startswith("  "):
            if words:
                break
            continue
        words.append(line.strip())
    return " ".join(words)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _dedent(lines: list[str]) -> str:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    margin = min((_indent(x) for x in lines if x.strip()), default=0)
    return "\n".join(x[margin:] for x in lines)


# ---------------------------------------------------------------- step state


@dataclass(frozen=True, slots=True)
class StepState:
    """A step as worked on one incident: pending, done or skipped, with who and any note."""

    step: Step
    state: str = "pending"
    actor: str = ""
    note: str = ""


def step_states(steps: Sequence[Step], timeline: Iterable[TimelineEvent]) -> list[StepState]:
    """Each step's latest recorded state from an incident's timeline."""
    latest: dict[str, TimelineEvent] = {}
    for event in timeline:
        if event.kind is EventKind.STEP:
            latest[str(event.data.get("step"))] = event
    out = []
    for step in steps:
        e = latest.get(step.number)
        out.append(StepState(step, str(e.data.get("state")), e.actor, str(e.data.get("note") or ""))
                   if e else StepState(step))
    return out


def steps_of(runbook: Runbook | None, timeline: Iterable[TimelineEvent]) -> tuple[Step, ...]:
    """The steps recorded on the incident when it opened, else the runbook's current ones."""
    for event in timeline:
        if event.kind is EventKind.RUNBOOK and event.data.get("steps"):
            return tuple(Step(number=s["number"], text=s["text"]) for s in event.data["steps"])
    return runbook.steps if runbook else ()


def find_step(steps: Sequence[Step], number: str) -> Step | None:
    """The step numbered `number` ("3" or "2.1")."""
    return next((s for s in steps if s.number == number), None)


# ---------------------------------------------------------------- lint and search


@dataclass(frozen=True, slots=True)
class LintProblem:
    """One finding of `incident runbook lint`."""

    path: str
    line: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.message}"


def lint(runbooks: Mapping[str, Runbook], checks: Sequence[Check], root: Path, today: date
         ) -> list[LintProblem]:
    """Checks without runbooks, unknown checks, no steps, overdue reviews, broken links."""
    problems: list[LintProblem] = []
    names = {c.name for c in checks}
    for check in checks:
        if check.runbook is None:
            where = check.position
            problems.append(LintProblem(str(where.file) if where else "checks/",
                                        where.line if where else 0, "no-runbook",
                                        f"check '{check.name}' names no runbook"))
    for rb in sorted(runbooks.values(), key=lambda r: r.name):
        path = str(rb.path.relative_to(root)) if rb.path.is_relative_to(root) else str(rb.path)
        for name in rb.checks:
            if name not in names:
                problems.append(LintProblem(path, 1, "unknown-check",
                                            f"runbook lists check '{name}', which does not exist"))
        if not rb.steps:
            problems.append(LintProblem(path, rb.body_line, "no-steps",
                                        "the body has no numbered steps"))
        due = rb.review_due()
        if due is not None and due < today:
            problems.append(LintProblem(path, 1, "review-overdue",
                                        f"last reviewed {rb.reviewed}, due {due} "
                                        f"({(today - due).days} days overdue)"))
        elif rb.reviewed is None:
            problems.append(LintProblem(path, 1, "never-reviewed",
                                        "no 'reviewed' date in the front matter"))
        for offset, line in enumerate(rb.body.splitlines()):
            for target in _LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target):
                    continue  # URLs, anchors and absolute paths are not ours to check
                if not (rb.path.parent / target.split("#", 1)[0]).exists():
                    problems.append(LintProblem(path, rb.body_line + offset, "broken-link",
                                                f"relative link '{target}' points nowhere"))
    return problems


def search(runbooks: Mapping[str, Runbook], words: Sequence[str]) -> list[tuple[int, Runbook]]:
    """Runbooks matching every word (title and tags weigh more than the body), best first."""
    hits = []
    for rb in runbooks.values():
        score = 0
        for word in (w.lower() for w in words):
            title = word in rb.title.lower() or word in rb.name
            tags = any(word in t.lower() for t in rb.tags)
            body = rb.body.lower().count(word)
            if not (title or tags or body):
                break
            score += 10 * title + 5 * tags + min(body, 5)
        else:
            hits.append((score, rb))
    return sorted(hits, key=lambda h: (-h[0], h[1].name))


def snapshot(runbook: Runbook) -> dict[str, object]:
    """What an incident records of its runbook when it opens: name, title and the steps."""
    return {"runbook": runbook.name, "title": runbook.title,
            "steps": [{"number": s.number, "text": s.text} for s in runbook.steps]}


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One incident that used a runbook, as the knowledge base shows it."""

    incident: Incident
    notes: tuple[str, ...]
    learned: tuple[str, ...]
    skipped: tuple[str, ...]

    @property
    def time_to_resolve(self) -> timedelta | None:
        """Opened to resolved, or None while it is still open."""
        i = self.incident
        return i.resolved_at - i.opened_at if i.resolved_at else None


def history_entry(incident: Incident) -> HistoryEntry:
    """Notes, lessons and skipped steps of one incident (read with its timeline)."""
    timeline = incident.timeline
    return HistoryEntry(
        incident=incident,
        notes=tuple(e.text for e in timeline if e.kind is EventKind.NOTE),
        learned=tuple(e.text for e in timeline if e.kind is EventKind.LEARNED),
        skipped=tuple(str(e.data.get("step")) + (f" ({e.data['note']})" if e.data.get("note")
                                                 else "")
                      for e in timeline
                      if e.kind is EventKind.STEP and e.data.get("state") == "skipped"))
