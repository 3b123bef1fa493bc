"""The outbox relay: publish committed event documents to their Service Bus topic.

Fed by the change feed, so nothing is published that was not committed. `message_id` is the
event id: relaying the same document twice (a redelivered feed batch, a replayed lease) is
dropped by the topic's duplicate detection, and consumers are idempotent beyond its window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from shared.domain.events import Event
from shared.ports import MessagePublisher, OutboundMessage


def relay_outbox(documents: Iterable[dict[str, Any]], bus: MessagePublisher) -> int:
    """Publish every outbox event among `documents`, one send per topic. Returns how many."""
    by_topic: dict[str, list[OutboundMessage]] = defaultdict(list)
    for document in documents:
        if document.get("type") != Event.DOC_TYPE or not document.get("topic"):
            continue
        event = Event.model_validate(document)
        by_topic[document["topic"]].append(to_message(event))
    for topic, messages in by_topic.items():
        bus.publish(topic, messages)
    return sum(len(messages) for messages in by_topic.values())


def to_message(event: Event) -> OutboundMessage:
    return OutboundMessage(
        body=event.model_dump_json(by_alias=True).encode(),
        message_id=event.event_id,
        subject=event.event_type,
        correlation_id=event.correlation_id,
        application_properties={
            "reservationId": event.payload.get("reservationId"),
            "eventType": str(event.event_type),
            **event.trace_context,
        },
    )
