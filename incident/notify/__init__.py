"""Notification: pick the route, render the message, deliver through apprise, report each attempt.

This first cut sends on open and resolve; the outbox, repeat, escalation and grouping
stages arrive with the notification work.
"""

from incident.notify.deliver import Delivery, Notifier
from incident.notify.message import Message, render

__all__ = ["Delivery", "Message", "Notifier", "render"]
