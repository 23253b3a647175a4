"""What the drills leave unrehearsed: checks no drill exercises, runbooks no drill reaches. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from incident.drills.run import involved_checks
from incident.model import Project


@dataclass(frozen=True, slots=True, kw_only=True)
class Coverage:
    """Per check and per runbook, the drills that exercise it (empty: none does)."""

    checks: dict[str, tuple[str, ...]]
    runbooks: dict[str, tuple[str, ...]]

    @property
    def uncovered_checks(self) -> list[str]:
        """Checks no drill exercises."""
        return [c for c, drills in self.checks.items() if not drills]

    @property
    def unrehearsed_runbooks(self) -> list[str]:
        """Runbooks no drill rehearses."""
        return [r for r, drills in self.runbooks.items() if not drills]


def coverage(project: Project) -> Coverage:
    """Which drills exercise each check (a fault on it, on a metric it reads, or an
    expectation about it), and which rehearse each runbook (through those checks' runbooks,
    or an `incident` expectation that names the runbook)."""
    checks: dict[str, list[str]] = {c.name: [] for c in project.checks}
    runbooks: dict[str, list[str]] = {r: [] for r in sorted(project.runbooks)}
    for name, drill in sorted(project.drills.items()):
        exercised = [c for c in involved_checks(project, drill)
                     if any(i.check == c.name or i.metric for i in drill.inject)
                     or any(e.check == c.name for e in drill.expect)]
        for c in exercised:
            checks[c.name].append(name)
            if c.runbook in runbooks and name not in runbooks[c.runbook]:
                runbooks[c.runbook].append(name)
        for e in drill.expect:
            if e.runbook in runbooks and name not in runbooks[e.runbook]:
                runbooks[e.runbook].append(name)
    return Coverage(checks={k: tuple(v) for k, v in checks.items()},
                    runbooks={k: tuple(v) for k, v in runbooks.items()})
