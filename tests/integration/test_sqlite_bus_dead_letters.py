"""The embedded bus's dead-letter queue: listing, replay and purge."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.embedded.sqlite_bus import DeadLetterNotFound, SqliteMessageBus
from shared.ports import OutboundMessage
from shared.topology import SUB_PAYMENT, TOPIC_RESERVATION


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[SqliteMessageBus]:
    opened = SqliteMessageBus(tmp_path)
    yield opened
    opened.close()


def publish_and_dead_letter(bus: SqliteMessageBus, body: bytes, reason: str = "Poison") -> str:
    message_id = str(uuid.uuid4())
    bus.publish(TOPIC_RESERVATION, [OutboundMessage(body, message_id, "ReservationPlaced")])
    (received,) = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT)
    bus.dead_letter(received, reason, f"{reason} described")
    return message_id


def test_dead_letters_are_listed_oldest_first_with_their_reason(bus: SqliteMessageBus) -> None:
    first = publish_and_dead_letter(bus, b"one", "BadBody")
    second = publish_and_dead_letter(bus, b"two", "UnknownMusical")

    listed = bus.dead_letters(TOPIC_RESERVATION, SUB_PAYMENT)

    assert [(m.message_id, m.body) for m in listed] == [(first, b"one"), (second, b"two")]
    assert [m.dead_letter_reason for m in listed] == ["BadBody", "UnknownMusical"]
    assert listed[0].dead_letter_error_description == "BadBody described"
    assert bus.dead_letters(TOPIC_RESERVATION, SUB_PAYMENT, limit=1)[0].message_id == first


def test_a_replayed_dead_letter_is_delivered_again_as_a_fresh_message(
    bus: SqliteMessageBus,
) -> None:
    message_id = publish_and_dead_letter(bus, b"retry me")
    (dead,) = bus.dead_letters(TOPIC_RESERVATION, SUB_PAYMENT)

    bus.replay_dead_letter(TOPIC_RESERVATION, SUB_PAYMENT, dead.sequence_number)

    assert bus.dead_letters(TOPIC_RESERVATION, SUB_PAYMENT) == []
    (again,) = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT)
    assert (again.message_id, again.body) == (message_id, b"retry me")
    assert again.delivery_count == 1
    assert again.sequence_number > dead.sequence_number
    assert again.dead_letter_reason is None


def test_a_purged_dead_letter_is_gone(bus: SqliteMessageBus) -> None:
    publish_and_dead_letter(bus, b"drop me")
    (dead,) = bus.dead_letters(TOPIC_RESERVATION, SUB_PAYMENT)

    bus.purge_dead_letter(TOPIC_RESERVATION, SUB_PAYMENT, dead.sequence_number)

    assert bus.dead_letters(TOPIC_RESERVATION, SUB_PAYMENT) == []
    assert bus.receive(TOPIC_RESERVATION, SUB_PAYMENT) == []


def test_replaying_or_purging_a_message_that_is_not_a_dead_letter_raises(
    bus: SqliteMessageBus,
) -> None:
    bus.publish(TOPIC_RESERVATION, [OutboundMessage(b"live", "live-1", "ReservationPlaced")])
    (live,) = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT)

    with pytest.raises(DeadLetterNotFound):
        bus.replay_dead_letter(TOPIC_RESERVATION, SUB_PAYMENT, live.sequence_number)
    with pytest.raises(DeadLetterNotFound):
        bus.purge_dead_letter(TOPIC_RESERVATION, SUB_PAYMENT, live.sequence_number)
    with pytest.raises(DeadLetterNotFound):
        bus.replay_dead_letter(TOPIC_RESERVATION, SUB_PAYMENT, 999_999)
    bus.complete(live)


def test_dead_letters_survive_reopening_the_bus(tmp_path: Path) -> None:
    bus = SqliteMessageBus(tmp_path)
    message_id = publish_and_dead_letter(bus, b"kept")
    bus.close()

    reopened = SqliteMessageBus(tmp_path)
    try:
        (dead,) = reopened.dead_letters(TOPIC_RESERVATION, SUB_PAYMENT)
    finally:
        reopened.close()

    assert (dead.message_id, dead.dead_letter_reason) == (message_id, "Poison")
