"""Readiness of the embedded bus: counting every subscription's messages both probes the bus
and measures its backlog (shared.handlers.readiness)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from shared.topology import TOPICS


@runtime_checkable
class BacklogCounter(Protocol):
    """A bus that can count a subscription's active messages (the embedded bus)."""

    def active_count(self, topic: str, subscription: str) -> int: ...


class EmbeddedBusCheck:
    def __init__(self, bus: BacklogCounter) -> None:
        self._bus = bus

    def backlog(self) -> dict[str, int] | None:
        return {
            f"{topic.name}/{subscription.name}": self._bus.active_count(
                topic.name, subscription.name
            )
            for topic in TOPICS.values()
            for subscription in topic.subscriptions
        }
