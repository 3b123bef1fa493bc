"""An in-memory message bus for unit tests: the Service Bus semantics of `shared.ports` (fan-out
by subject filter, duplicate detection, scheduling, peek-lock, dead-lettering) on Python objects.

Held to the same contract suite as the embedded and Azure buses (tests/contract/), so that unit
tests of handlers can trust it. Test-only: never used by the app or devhost.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from devhost.embedded.sqlite_bus_schema import (
    MAX_DELIVERY_COUNT_EXCEEDED,
    max_delivery_description,
)
from shared import topology
from shared.ports import LockLost, OutboundMessage, ReceivedMessage
from shared.topology import SubscriptionSpec, TopicSpec


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Entry:
    """One message in one subscription."""

    message: OutboundMessage
    sequence_number: int
    enqueued_time: datetime
    visible_at: datetime
    delivery_count: int = 0
    lock_token: str | None = None


@dataclass
class BusState:
    """What a bus holds; several `MemoryMessageBus` clients may share it (a "reopen")."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    active: dict[tuple[str, str], list[_Entry]] = field(default_factory=dict)
    dead: dict[tuple[str, str], list[ReceivedMessage]] = field(default_factory=dict)
    sent_ids: dict[tuple[str, str], datetime] = field(default_factory=dict)
    sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


class MemoryMessageBus:
    """MessagePublisher and MessageReceiver over a `BusState`. Thread-safe."""

    def __init__(
        self,
        topics: Mapping[str, TopicSpec] = topology.TOPICS,
        clock: Callable[[], datetime] = _utc_now,
        state: BusState | None = None,
    ) -> None:
        self._topics = dict(topics)
        self._clock = clock
        self.state = state or BusState()

    # ------------------------------------------------------------------ publishing

    def publish(self, topic: str, messages: Sequence[OutboundMessage]) -> None:
        spec = self._topic(topic)
        now = self._clock()
        window = timedelta(seconds=spec.duplicate_detection_window_seconds)
        with self.state.lock:
            for message in messages:
                seen_until = self.state.sent_ids.get((topic, message.message_id))
                if seen_until is not None and seen_until > now:
                    continue
                self.state.sent_ids[topic, message.message_id] = now + window
                scheduled = message.scheduled_enqueue_time or now
                for subscription in spec.subscriptions:
                    if subscription.subjects and message.subject not in subscription.subjects:
                        continue
                    entry = _Entry(
                        message,
                        next(self.state.sequence),
                        enqueued_time=max(scheduled, now),
                        visible_at=scheduled,
                    )
                    self.state.active.setdefault((topic, subscription.name), []).append(entry)

    # ------------------------------------------------------------------ peek-lock

    def receive(
        self, topic: str, subscription: str, max_messages: int = 1
    ) -> list[ReceivedMessage]:
        spec = self._subscription(topic, subscription)
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        now = self._clock()
        received = []
        with self.state.lock:
            for entry in list(self._entries(topic, subscription)):
                if len(received) == max_messages:
                    break
                if entry.visible_at > now:
                    continue
                if entry.lock_token is not None and entry.delivery_count >= spec.max_delivery_count:
                    self._dead_letter(topic, spec, entry, *_max_delivery(spec), at=now)
                    continue
                entry.delivery_count += 1
                entry.lock_token = uuid.uuid4().hex
                entry.visible_at = now + timedelta(seconds=spec.lock_duration_seconds)
                received.append(self._delivered(topic, subscription, entry))
        return received

    def complete(self, message: ReceivedMessage) -> None:
        self._subscription(message.topic, message.subscription)
        with self.state.lock:
            self._entries(message.topic, message.subscription).remove(self._held(message))

    def abandon(self, message: ReceivedMessage) -> None:
        spec = self._subscription(message.topic, message.subscription)
        now = self._clock()
        with self.state.lock:
            entry = self._held(message)
            if entry.delivery_count >= spec.max_delivery_count:
                self._dead_letter(message.topic, spec, entry, *_max_delivery(spec), at=now)
            else:
                entry.lock_token, entry.visible_at = None, now

    def renew_lock(self, message: ReceivedMessage) -> datetime:
        spec = self._subscription(message.topic, message.subscription)
        with self.state.lock:
            entry = self._held(message)
            entry.visible_at = self._clock() + timedelta(seconds=spec.lock_duration_seconds)
            return entry.visible_at

    def dead_letter(self, message: ReceivedMessage, reason: str, description: str = "") -> None:
        spec = self._subscription(message.topic, message.subscription)
        with self.state.lock:
            entry = self._held(message)
            self._dead_letter(message.topic, spec, entry, reason, description, at=self._clock())

    # ------------------------------------------------------------------ test helpers

    def active_count(self, topic: str, subscription: str) -> int:
        """Messages deliverable now or locked by a receiver (not scheduled ones still in the
        future, not dead letters), as the embedded bus counts them for readiness."""
        spec = self._subscription(topic, subscription)
        now = self._clock()
        with self.state.lock:
            for entry in list(self._entries(topic, subscription)):
                expired = entry.lock_token is not None and entry.visible_at <= now
                if expired and entry.delivery_count >= spec.max_delivery_count:
                    self._dead_letter(topic, spec, entry, *_max_delivery(spec), at=now)
            return sum(
                1
                for entry in self._entries(topic, subscription)
                if entry.visible_at <= now or entry.lock_token is not None
            )

    def dead_letters(self, topic: str, subscription: str) -> list[ReceivedMessage]:
        """The subscription's dead-letter queue, oldest first."""
        self._subscription(topic, subscription)
        with self.state.lock:
            return list(self.state.dead.get((topic, subscription), []))

    def close(self) -> None:
        """Nothing to release: the state lives as long as someone holds it."""

    # ------------------------------------------------------------------ internals

    def _entries(self, topic: str, subscription: str) -> list[_Entry]:
        return self.state.active.setdefault((topic, subscription), [])

    def _held(self, message: ReceivedMessage) -> _Entry:
        """The entry whose current lock `message` holds (call with the lock held)."""
        now = self._clock()
        for entry in self._entries(message.topic, message.subscription):
            if (
                entry.sequence_number == message.sequence_number
                and entry.lock_token == message.lock_token
                and entry.visible_at > now
            ):
                return entry
        raise LockLost(
            f"{message.topic}/{message.subscription} message {message.sequence_number}:"
            " lock expired or message already settled"
        )

    def _dead_letter(
        self,
        topic: str,
        spec: SubscriptionSpec,
        entry: _Entry,
        reason: str,
        description: str,
        *,
        at: datetime,
    ) -> None:
        self._entries(topic, spec.name).remove(entry)
        letter = replace(
            self._delivered(topic, spec.name, entry),
            lock_token="",
            locked_until=at,
            dead_letter_reason=reason,
            dead_letter_error_description=description,
        )
        self.state.dead.setdefault((topic, spec.name), []).append(letter)

    @staticmethod
    def _delivered(topic: str, subscription: str, entry: _Entry) -> ReceivedMessage:
        message = entry.message
        return ReceivedMessage(
            body=message.body,
            message_id=message.message_id,
            subject=message.subject,
            correlation_id=message.correlation_id,
            content_type=message.content_type,
            application_properties=dict(message.application_properties),
            delivery_count=entry.delivery_count,
            sequence_number=entry.sequence_number,
            enqueued_time=entry.enqueued_time,
            lock_token=entry.lock_token or "",
            locked_until=entry.visible_at,
            topic=topic,
            subscription=subscription,
        )

    def _topic(self, topic: str) -> TopicSpec:
        try:
            return self._topics[topic]
        except KeyError:
            raise ValueError(f"unknown topic {topic!r}") from None

    def _subscription(self, topic: str, subscription: str) -> SubscriptionSpec:
        for spec in self._topic(topic).subscriptions:
            if spec.name == subscription:
                return spec
        raise ValueError(f"topic {topic!r} has no subscription {subscription!r}")


def _max_delivery(spec: SubscriptionSpec) -> tuple[str, str]:
    """The reason and description Service Bus gives a message out of delivery attempts."""
    return MAX_DELIVERY_COUNT_EXCEEDED, max_delivery_description(spec.max_delivery_count)
