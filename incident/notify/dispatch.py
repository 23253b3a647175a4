"""The deliver stage: claim what is due → group per channel → rate limit → send → record.

A failed row is retried with bounded exponential backoff on later runs (and `tries` times within
a run), goes dead after `delivery.attempts` and then to the fallback channel, whose copy starts
with a line saying whom it was meant for and why it failed. Every attempt is recorded on the
incident's timeline by the outbox, in the same transaction as its new state.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from incident.model import DRILL_PREFIX, Attempt, DeliveryPolicy, Envelope, OutboxItem
from incident.notify.deliver import Delivery, Notifier
from incident.notify.message import Message, digest
from incident.notify.outbox import Outbox
from incident.notify.plan import UNMUTED

# Events people post or take themselves keep their own message: a digest line is only a title,
# and a status update's text is the point of it.
ALONE = UNMUTED

# A claim outlives any send (apprise's timeouts are seconds); past it a crashed runner's rows
# become due again for another runner.
CLAIM = timedelta(minutes=5)
# Enough of a failure to act on from a phone; the whole error is on the timeline.
NOTE_ERROR_CHARS = 200
FALLBACK = ":fallback"  # the event key suffix of a fallback's copy
NOTE = "Sent here because "  # how the first line of a fallback's copy starts


@dataclass(frozen=True, slots=True)
class Batch:
    """Rows sent as one message: one row, or a digest of a storm."""

    channel: str
    items: tuple[OutboxItem, ...]

    def message(self, policy: DeliveryPolicy) -> Message:
        """The message for the channel: the row's own, or a digest with a line per row."""
        msgs = [Message(event=i.envelope.event, title=i.envelope.title, body=i.envelope.body,
                        severity=i.envelope.severity) for i in self.items]
        if len(msgs) == 1:
            return msgs[0]
        message = digest(msgs, templates=policy.templates)
        # A digest shows titles only: without these lines its fallback rows would not say why.
        notes = dict.fromkeys(line for i in self.items if i.envelope.event_key.endswith(FALLBACK)
                              and (line := i.envelope.body.partition("\n")[0]).startswith(NOTE))
        return replace(message, body="\n".join([*notes, message.body])) if notes else message


def backoff(policy: DeliveryPolicy, attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: doubling from `backoff`, at most `max_backoff`."""
    return min(policy.backoff * 2 ** (attempts - 1), policy.max_backoff)


def batches(items: Sequence[OutboxItem], outbox: Outbox, policy: DeliveryPolicy, now: datetime
            ) -> tuple[list[Batch], list[OutboxItem]]:
    """Group per channel and apply the rate limit: (send, hold).

    More than `policy.group_over` rows due at once for one channel (by default any two: the
    incidents of one run) go out as one digest; updates and acknowledgements always alone.
    """
    by_channel: dict[str, list[OutboxItem]] = {}
    for item in items:
        by_channel.setdefault(item.envelope.channel, []).append(item)
    send: list[Batch] = []
    hold: list[OutboxItem] = []
    for channel, rows in by_channel.items():
        alone = [[r] for r in rows if r.envelope.event in ALONE]
        rest = [r for r in rows if r.envelope.event not in ALONE]
        groups = alone + ([rest] if len(rest) > policy.group_over else [[r] for r in rest])
        recent = outbox.sent_messages(channel, since=now - policy.rate_window, until=now)
        budget = max(policy.rate_limit - recent, 0)
        send += [Batch(channel, tuple(g)) for g in groups[:budget]]
        hold += [r for g in groups[budget:] for r in g]
    return send, hold


def deliver(outbox: Outbox, notifier: Notifier, policy: DeliveryPolicy, now: datetime, *,
            runner: str, actor: str, concurrency: int = 8, tries: int = 2) -> list[Attempt]:
    """Deliver every due row once (up to `tries` attempts each); the attempts, all recorded.

    A row that goes dead enqueues its fallback, which a second pass delivers in the same run.
    """
    out: list[Attempt] = []
    for _ in range(2):
        made = _pass(outbox, notifier, policy, now, runner=runner, actor=actor,
                     concurrency=concurrency, tries=tries)
        out += made
        if not any(a.then for a in made):
            break
    return out


def _pass(outbox: Outbox, notifier: Notifier, policy: DeliveryPolicy, now: datetime, *,
          runner: str, actor: str, concurrency: int, tries: int) -> list[Attempt]:
    items = outbox.claim_due(now=now, runner=runner, lease=CLAIM)
    if not items:
        return []
    send, hold = batches(items, outbox, policy, now)
    outbox.release([i.id for i in hold], runner=runner)

    def one(batch: Batch) -> list[Attempt]:
        message = batch.message(policy)
        attempts: list[Attempt] = []
        for t in range(tries):
            result = notifier.send_one(batch.channel, message)
            done = _attempts(batch, result, policy, now, t)
            attempts += done
            if result.ok or any(a.retry_at is None for a in done) or not result.retryable:
                break
        return attempts

    out: list[Attempt] = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for done in pool.map(one, send):
            out += done
    outbox.record_attempts(out, runner=runner, actor=actor)
    return out


def _attempts(batch: Batch, result: Delivery, policy: DeliveryPolicy, now: datetime, t: int
              ) -> list[Attempt]:
    """One attempt per row of the batch, with its next try or its fallback when it is dead."""
    message_id = uuid.uuid4().hex if result.ok else None
    out = []
    for item in batch.items:
        n = item.attempts + t + 1
        retry_at = None if result.ok or n >= policy.attempts or not result.retryable \
            else now + backoff(policy, n)
        then: tuple[Envelope, ...] = ()
        env = item.envelope
        if not result.ok and retry_at is None and policy.fallback \
                and env.channel.removeprefix(DRILL_PREFIX) != policy.fallback \
                and not env.event_key.endswith(FALLBACK):
            # A drill's fallback is the fallback's drill stand-in: a drill never pages for real.
            fallback = (DRILL_PREFIX if env.channel.startswith(DRILL_PREFIX) else "") \
                + policy.fallback
            then = (replace(env, channel=fallback, event_key=env.event_key + FALLBACK,
                            body=f"{fallback_note(env.channel, n, result.error)}\n{env.body}"),)
        out.append(Attempt(item=item, number=n, at=now, ok=result.ok, error=result.error,
                           message=message_id, retry_at=retry_at, then=then))
    return out


def fallback_note(channel: str, attempts: int, error: str | None) -> str:
    """The first line of a fallback's copy: whom it was meant for and why it did not get it.

    `error` comes scrubbed of the channel's secrets (see deliver); it is only shortened here.
    """
    why = " ".join((error or "no reason given").split())
    if len(why) > NOTE_ERROR_CHARS:
        why = why[:NOTE_ERROR_CHARS - 1] + "…"
    times = "once" if attempts == 1 else f"{attempts} times"
    return f"{NOTE}{channel.removeprefix(DRILL_PREFIX)} failed {times}: {why}"
