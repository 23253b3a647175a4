"""Every error a user can cause or meet, each with its own exit code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class IncidentError(Exception):
    """Base of every error the CLI turns into a one-line message and an exit code."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in one file: `checks/api.yaml:14:7: checks[2].detector.type: …`."""

    file: Path | str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else f"{self.file}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ConfigError(IncidentError):
    """The project's configuration is invalid; carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(IncidentError):
    """A command-line argument is wrong (a bad time, an unknown check name)."""

    exit_code = 2


class SourceError(IncidentError):
    """A source could not be read: unreachable, timed out, HTTP error, bad query."""

    exit_code = 3

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        super().__init__(f"source {source!r}: {message}")


class QueryError(SourceError):
    """The query itself is wrong (PromQL syntax, unsupported construct); retrying will not help."""


class StoreError(IncidentError):
    """The incident store could not be opened, read or written."""

    exit_code = 4


class NotFound(IncidentError):
    """An incident, runbook or other named thing does not exist."""

    exit_code = 5


class NotifyError(IncidentError):
    """A notification could not be delivered."""

    exit_code = 6


class DrillError(IncidentError):
    """A drill cannot be run as written here (a raw-metric fault on a Prometheus source …).

    A drill that runs and fails its expectations is not an error: it exits 1 with a scorecard.
    """

    exit_code = 2
