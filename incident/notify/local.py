"""A `file://PATH` apprise channel: each notification appended to a local file.

It lets the sample project (and anyone without a chat account) see notifications
arrive, through the same apprise path as every other channel.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEME = "file"
_registered = False


def register() -> None:
    """Teach apprise the file:// scheme (once per process)."""
    global _registered
    if _registered:
        return
    from apprise.decorators import notify

    @notify(on=SCHEME, name="Local file")
    def _append(body: str, title: str, notify_type: str, meta: dict[str, Any],
                *args: Any, **kwargs: Any) -> bool:
        # apprise hands back file:///a/b as file://a/b; `absolute` made every path absolute.
        path = Path("/" + meta["url"].split("://", 1)[1].split("?", 1)[0].lstrip("/"))
        record = {"at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                  "type": str(notify_type), "title": title, "body": body}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        except OSError:
            return False
        return True

    _registered = True


def absolute(url: str, root: Path) -> str:
    """A file:// URL with a relative path made relative to the project root."""
    if not url.startswith(f"{SCHEME}://"):
        return url
    rest = url.split("://", 1)[1]
    path = Path(rest)
    return url if path.is_absolute() else f"{SCHEME}://{(root / path).resolve()}"
