"""Notification: a pipeline of small stages on apprise, composed in `pipeline`.

plan (route + maintenance + silence → envelopes with idempotency keys) → outbox (the store)
→ deliver (group per channel → rate limit → apprise with bounded retry → record on the timeline).
"""

from incident.notify.deliver import Delivery, Notifier
from incident.notify.message import Message, render

__all__ = ["Delivery", "Message", "Notifier", "render"]
