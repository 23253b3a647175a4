"""Delivery through apprise (the only importer of it): one call per channel, each reported."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from incident.model import Channel, Settings
from incident.notify import local
from incident.notify.message import Message


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of sending one message to one channel; `error` never holds a secret."""

    channel: str
    ok: bool
    error: str | None = None
    retryable: bool = True  # False when trying again cannot help (an unknown channel or URL)


class Notifier:
    """Routes messages to channels and delivers them."""

    def __init__(self, settings: Settings, root: Path) -> None:
        self._channels: Mapping[str, Channel] = settings.channels
        self._root = root
        self._apprise: dict[str, Any] = {}

    def invalid_channels(self) -> list[Channel]:
        """Channels whose URL apprise does not understand (checked at validation time)."""
        return [c for c in self._channels.values() if self._client(c) is None]

    def send(self, channels: Sequence[str], message: Message) -> list[Delivery]:
        """Deliver `message` to each named channel; failures are returned, never raised."""
        return [self.send_one(name, message) for name in channels]

    def send_one(self, channel: str, message: Message) -> Delivery:
        """Deliver `message` to one named channel; a failure is returned, never raised."""
        if channel not in self._channels:
            return Delivery(channel, False, f"no channel named {channel!r} in incident.yaml",
                            retryable=False)
        return self._send_one(self._channels[channel], message)

    def _client(self, channel: Channel) -> Any:
        if channel.name not in self._apprise:
            import apprise

            local.register()
            client = apprise.Apprise()
            ok = client.add(local.absolute(channel.url, self._root))
            self._apprise[channel.name] = client if ok else None
        return self._apprise[channel.name]

    def _send_one(self, channel: Channel, message: Message) -> Delivery:
        import apprise

        if channel.unset:
            names = ", ".join(f"${{{v}}}" for v in channel.unset)
            return Delivery(channel.name, False, f"{names} not set where this ran: kept for a run "
                                                 "whose environment has it")
        client = self._client(channel)
        if client is None:
            return Delivery(channel.name, False,
                            f"apprise does not understand the URL {channel.redacted}",
                            retryable=False)
        kind = {"resolved": apprise.NotifyType.SUCCESS, "critical": apprise.NotifyType.FAILURE
                }.get(message.event if message.event == "resolved" else message.severity,
                      apprise.NotifyType.WARNING)
        result = client.notify(title=message.title, body=message.body, notify_type=kind)
        if bool(result):
            return Delivery(channel.name, True)
        return Delivery(channel.name, False, _scrub(_reason(result), channel.url))


def _reason(result: Any) -> str:
    """The last warning apprise logged for a failed send, or its status."""
    for item in result:
        entries = [e for e in item.logs() if getattr(e, "level", "") in ("WARNING", "ERROR")]
        if entries:
            return str(entries[-1].message)
    return f"delivery failed ({getattr(result, 'status', 'unknown')})"


def _scrub(text: str, url: str) -> str:
    """Remove every secret-looking piece of `url` from `text`."""
    parts = urlsplit(url)
    secrets = [parts.password or ""]
    secrets += [v for _, v in parse_qsl(parts.query) if len(v) >= 6]
    secrets += [seg for seg in parts.path.split("/") if len(seg) >= 12]
    for secret in filter(None, secrets):
        text = text.replace(secret, "***")
    return re.sub(r"://[^@\s/]+:[^@\s/]+@", "://***@", text)
