"""Jinja2 (the only module that imports it): built-in templates the project can override.

Notification and report templates ship in the package; a project directory with a file of
the same name wins, so teams change wording without touching code.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from incident.errors import ConfigError, ConfigProblem


@lru_cache(maxsize=16)
def _environment(builtin: Path, override: Path | None, html: bool) -> Any:
    import jinja2

    dirs = [str(p) for p in (override, builtin) if p is not None]
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(dirs),
        autoescape=html,  # HTML reports escape every value; plain-text messages must not
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
    )


def render(builtin: Path, name: str, context: dict[str, Any], *, override: Path | None = None,
           html: bool = False) -> str:
    """Render template `name`, the project's override first; a broken template is a ConfigError."""
    import jinja2

    env = _environment(builtin, override, html)
    try:
        return str(env.get_template(name).render(**context))
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError([ConfigProblem(exc.filename or name, exc.lineno or 0, 0, "",
                                         f"template error: {exc.message}")]) from None
    except jinja2.UndefinedError as exc:
        where = override / name if override and (override / name).exists() else name
        raise ConfigError([ConfigProblem(str(where), 0, 0, "", f"template error: {exc}")]
                          ) from None
