"""The repository's sample project, for tests that copy it (importable: conftest is not)."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def copy_sample(dest: Path) -> Path:
    """The repository's sample project (config, checks, runbooks, drills) copied under `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "incident.yaml", dest / "incident.yaml")
    for part in ("checks", "runbooks", "drills"):
        shutil.copytree(REPO / part, dest / part)
    return dest
