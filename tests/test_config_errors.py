"""Broken configurations, each kept as a golden project with its exact messages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from incident.cli import main

GOLDEN = Path(__file__).parent / "golden" / "config"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES)
def test_broken_config_gives_its_golden_message(case: str, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    """`checks validate` prints exactly the golden lines, exits 2, and shows no traceback."""
    monkeypatch.delenv("ONCALL_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("PROM_TOKEN", raising=False)
    project = GOLDEN / case
    result = CliRunner().invoke(main, ["--project", str(project), "checks", "validate"])
    got = result.stderr.replace(str(project.resolve()), "<project>")
    expected_file = project / "expected.txt"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected_file.write_text(got)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert got == expected_file.read_text()


def test_there_are_at_least_ten_kinds_of_broken_config() -> None:
    """The golden set covers at least ten different mistakes."""
    assert len(CASES) >= 10


def test_every_problem_in_a_run_is_reported_together() -> None:
    """Several mistakes in one file come out in one run, in file order."""
    text = (GOLDEN / "several-at-once" / "expected.txt").read_text().splitlines()
    assert len(text) == 4 and text[-1] == "3 problems found"
