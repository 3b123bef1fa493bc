"""The message-bus contract: the Service Bus semantics the handlers rely on.

Runs against every backend of `bus_backends.backend_factories()` over the real topology:
topic `reservation` → subscription `payment`; topic `payment` → `notice` (approved, declined,
cancelled) and `reservation` (approved, declined).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from shared.ports import LockLost, OutboundMessage, ReceivedMessage
from shared.topology import (
    SUB_NOTICE,
    SUB_PAYMENT,
    SUB_RESERVATION,
    TOPIC_PAYMENT,
    TOPIC_RESERVATION,
    TOPICS,
)
from tests.contract.bus_backends import Bus, BusBackend, backend_factories

PAYMENT_SUB = TOPICS[TOPIC_RESERVATION].subscriptions[0]
LOCK_SECONDS = PAYMENT_SUB.lock_duration_seconds
MAX_DELIVERIES = PAYMENT_SUB.max_delivery_count
DEDUP_WINDOW = TOPICS[TOPIC_RESERVATION].duplicate_detection_window_seconds
# How long a real namespace may take to make a published message receivable.
ARRIVAL_SECONDS = 10.0


@pytest.fixture(params=sorted(backend_factories()))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BusBackend]:
    made = backend_factories()[request.param](tmp_path)
    yield made
    made.close()


@pytest.fixture
def bus(backend: BusBackend) -> Bus:
    return backend.bus


def message(subject: str = "ReservationPlaced", **fields: object) -> OutboundMessage:
    fields.setdefault("body", b'{"reservationId": "r-1"}')
    fields.setdefault("message_id", str(uuid.uuid4()))
    return OutboundMessage(subject=subject, **fields)  # type: ignore[arg-type]


def receive_exactly(bus: Bus, topic: str, subscription: str, count: int) -> list[ReceivedMessage]:
    """Receive until `count` messages came (a real namespace needs a moment), then check that no
    more is deliverable."""
    received: list[ReceivedMessage] = []
    deadline = time.monotonic() + ARRIVAL_SECONDS
    while len(received) < count and time.monotonic() < deadline:
        received += bus.receive(topic, subscription, max_messages=count - len(received))
    assert len(received) == count, f"expected {count} messages, got {len(received)}"
    assert bus.receive(topic, subscription) == []
    return received


def receive_one(
    bus: Bus, topic: str = TOPIC_RESERVATION, sub: str = SUB_PAYMENT
) -> ReceivedMessage:
    (received,) = receive_exactly(bus, topic, sub, 1)
    return received


# --------------------------------------------------------------------------- delivery


def test_a_received_message_carries_every_field_as_published(backend: BusBackend) -> None:
    sent = message(
        body=b"\x00\xff binary \xe2\x82\xac",
        correlation_id="corr-42",
        content_type="application/octet-stream",
        application_properties={"text": "a", "int": 7, "float": 2.5, "flag": True, "none": None},
    )
    backend.bus.publish(TOPIC_RESERVATION, [sent])

    got = receive_one(backend.bus)

    assert (got.body, got.message_id, got.subject) == (sent.body, sent.message_id, sent.subject)
    assert got.correlation_id == "corr-42"
    assert got.content_type == "application/octet-stream"
    assert got.application_properties == sent.application_properties
    assert [type(v) for v in got.application_properties.values()] == [
        str,
        int,
        float,
        bool,
        type(None),
    ]
    assert (got.topic, got.subscription, got.delivery_count) == (TOPIC_RESERVATION, SUB_PAYMENT, 1)
    assert got.lock_token
    assert abs(got.enqueued_time - backend.now()) < timedelta(seconds=5)
    expected_lock_end = backend.now() + timedelta(seconds=LOCK_SECONDS)
    assert abs(got.locked_until - expected_lock_end) < timedelta(seconds=5)


def test_messages_are_received_oldest_first_up_to_max_messages(bus: Bus) -> None:
    sent = [message(subject=f"S{i}") for i in range(5)]
    bus.publish(TOPIC_RESERVATION, sent)

    first = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT, max_messages=3)
    rest = receive_exactly(bus, TOPIC_RESERVATION, SUB_PAYMENT, 5 - len(first))

    subjects = [m.subject for m in first + rest]
    assert subjects == [f"S{i}" for i in range(5)]
    assert len(first) <= 3
    numbers = [m.sequence_number for m in first + rest]
    assert numbers == sorted(numbers)


def test_completing_a_message_removes_it_for_good(backend: BusBackend) -> None:
    backend.bus.publish(TOPIC_RESERVATION, [message()])
    backend.bus.complete(receive_one(backend.bus))

    backend.advance(LOCK_SECONDS + 1)

    assert backend.bus.receive(TOPIC_RESERVATION, SUB_PAYMENT) == []


# --------------------------------------------------------------------------- peek-lock


def test_a_locked_message_is_hidden_from_other_receivers_while_the_lock_holds(
    backend: BusBackend,
) -> None:
    backend.bus.publish(TOPIC_RESERVATION, [message()])
    receive_one(backend.bus)

    backend.advance(LOCK_SECONDS / 2)

    assert backend.bus.receive(TOPIC_RESERVATION, SUB_PAYMENT) == []


def test_an_expired_lock_redelivers_the_message_with_delivery_count_plus_one(
    backend: BusBackend,
) -> None:
    backend.bus.publish(TOPIC_RESERVATION, [message()])
    first = receive_one(backend.bus)

    backend.advance(LOCK_SECONDS + 1)
    second = receive_one(backend.bus)

    assert second.message_id == first.message_id
    assert second.sequence_number == first.sequence_number
    assert second.delivery_count == first.delivery_count + 1
    assert second.lock_token != first.lock_token


def test_settling_with_a_lock_that_expired_raises_lock_lost(backend: BusBackend) -> None:
    backend.bus.publish(TOPIC_RESERVATION, [message()])
    stale = receive_one(backend.bus)
    backend.advance(LOCK_SECONDS + 1)

    with pytest.raises(LockLost):
        backend.bus.complete(stale)
    with pytest.raises(LockLost):
        backend.bus.abandon(stale)
    with pytest.raises(LockLost):
        backend.bus.renew_lock(stale)
    with pytest.raises(LockLost):
        backend.bus.dead_letter(stale, "Poison")


def test_settling_with_the_lock_of_an_earlier_delivery_raises_lock_lost(
    backend: BusBackend,
) -> None:
    backend.bus.publish(TOPIC_RESERVATION, [message()])
    stale = receive_one(backend.bus)
    backend.advance(LOCK_SECONDS + 1)
    current = receive_one(backend.bus)

    with pytest.raises(LockLost):
        backend.bus.complete(stale)

    backend.bus.complete(current)


def test_settling_an_already_completed_message_raises_lock_lost(bus: Bus) -> None:
    bus.publish(TOPIC_RESERVATION, [message()])
    received = receive_one(bus)
    bus.complete(received)

    with pytest.raises(LockLost):
        bus.complete(received)
    with pytest.raises(LockLost):
        bus.abandon(received)


def test_renewing_a_lock_keeps_the_message_hidden_past_the_first_lock(
    backend: BusBackend,
) -> None:
    backend.bus.publish(TOPIC_RESERVATION, [message()])
    received = receive_one(backend.bus)
    backend.advance(LOCK_SECONDS * 0.75)

    renewed_until = backend.bus.renew_lock(received)
    backend.advance(LOCK_SECONDS * 0.5)

    expected = backend.now() + timedelta(seconds=LOCK_SECONDS * 0.5)
    assert abs(renewed_until - expected) < timedelta(seconds=5)
    assert renewed_until > received.locked_until
    assert backend.bus.receive(TOPIC_RESERVATION, SUB_PAYMENT) == []
    backend.bus.complete(received)


def test_abandoning_makes_the_message_deliverable_again_at_once(bus: Bus) -> None:
    bus.publish(TOPIC_RESERVATION, [message()])
    first = receive_one(bus)

    bus.abandon(first)
    again = receive_one(bus)

    assert again.message_id == first.message_id
    assert again.delivery_count == first.delivery_count + 1


# --------------------------------------------------------------------------- dead letters


def test_a_message_abandoned_max_delivery_count_times_is_dead_lettered(
    backend: BusBackend,
) -> None:
    sent = message()
    backend.bus.publish(TOPIC_RESERVATION, [sent])

    for attempt in range(1, MAX_DELIVERIES + 1):
        received = receive_one(backend.bus)
        assert received.delivery_count == attempt
        backend.bus.abandon(received)

    assert backend.bus.receive(TOPIC_RESERVATION, SUB_PAYMENT) == []
    (dead,) = backend.dead_letters(TOPIC_RESERVATION, SUB_PAYMENT)
    assert dead.message_id == sent.message_id
    assert dead.body == sent.body
    assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"
    assert str(MAX_DELIVERIES) in (dead.dead_letter_error_description or "")


def test_a_message_whose_last_allowed_lock_expires_is_dead_lettered(
    backend: BusBackend,
) -> None:
    sent = message()
    backend.bus.publish(TOPIC_RESERVATION, [sent])

    for _ in range(MAX_DELIVERIES):
        receive_one(backend.bus)
        backend.advance(LOCK_SECONDS + 1)

    assert backend.bus.receive(TOPIC_RESERVATION, SUB_PAYMENT) == []
    (dead,) = backend.dead_letters(TOPIC_RESERVATION, SUB_PAYMENT)
    assert dead.message_id == sent.message_id
    assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"


def test_a_handler_can_dead_letter_a_message_with_its_own_reason(backend: BusBackend) -> None:
    sent = message()
    backend.bus.publish(TOPIC_RESERVATION, [sent])

    backend.bus.dead_letter(receive_one(backend.bus), "Poison", "body is not a reservation")

    backend.advance(LOCK_SECONDS + 1)
    assert backend.bus.receive(TOPIC_RESERVATION, SUB_PAYMENT) == []
    (dead,) = backend.dead_letters(TOPIC_RESERVATION, SUB_PAYMENT)
    assert dead.message_id == sent.message_id
    assert (dead.dead_letter_reason, dead.dead_letter_error_description) == (
        "Poison",
        "body is not a reservation",
    )


# --------------------------------------------------------------------------- scheduling


def test_a_scheduled_message_is_delivered_only_once_its_time_has_come(
    backend: BusBackend,
) -> None:
    sent = message(scheduled_enqueue_time=backend.now() + timedelta(seconds=30))
    backend.bus.publish(TOPIC_RESERVATION, [sent])

    assert backend.bus.receive(TOPIC_RESERVATION, SUB_PAYMENT) == []
    backend.advance(31)

    assert receive_one(backend.bus).message_id == sent.message_id


def test_a_message_scheduled_in_the_past_is_delivered_at_once(backend: BusBackend) -> None:
    sent = message(scheduled_enqueue_time=backend.now() - timedelta(seconds=30))
    backend.bus.publish(TOPIC_RESERVATION, [sent])

    assert receive_one(backend.bus).message_id == sent.message_id


# --------------------------------------------------------------------------- duplicates


def test_a_message_id_sent_again_within_the_window_is_delivered_once_everywhere(
    backend: BusBackend,
) -> None:
    approved = message(subject="PaymentApproved")
    backend.bus.publish(TOPIC_PAYMENT, [approved, approved])
    backend.advance(DEDUP_WINDOW / 2)
    backend.bus.publish(
        TOPIC_PAYMENT,
        [message(subject="PaymentApproved", body=b"other body", message_id=approved.message_id)],
    )

    for subscription in (SUB_NOTICE, SUB_RESERVATION):
        (received,) = receive_exactly(backend.bus, TOPIC_PAYMENT, subscription, 1)
        assert received.body == approved.body


def test_a_message_id_sent_again_after_the_window_is_delivered_again(
    backend: BusBackend,
) -> None:
    sent = message()
    backend.bus.publish(TOPIC_RESERVATION, [sent])
    backend.bus.complete(receive_one(backend.bus))

    backend.advance(DEDUP_WINDOW + 1)
    backend.bus.publish(TOPIC_RESERVATION, [sent])

    assert receive_one(backend.bus).message_id == sent.message_id


def test_the_same_message_id_on_another_topic_is_not_a_duplicate(bus: Bus) -> None:
    shared_id = str(uuid.uuid4())
    bus.publish(TOPIC_RESERVATION, [message(message_id=shared_id)])
    bus.publish(TOPIC_PAYMENT, [message(subject="PaymentCancelled", message_id=shared_id)])

    assert receive_one(bus).message_id == shared_id
    assert receive_one(bus, TOPIC_PAYMENT, SUB_NOTICE).message_id == shared_id


def test_a_scheduled_message_counts_for_duplicate_detection_when_it_is_sent(
    backend: BusBackend,
) -> None:
    sent = message(scheduled_enqueue_time=backend.now() + timedelta(seconds=30))
    backend.bus.publish(TOPIC_RESERVATION, [sent])
    backend.bus.publish(TOPIC_RESERVATION, [message(message_id=sent.message_id)])

    assert backend.bus.receive(TOPIC_RESERVATION, SUB_PAYMENT) == []
    backend.advance(31)
    assert receive_one(backend.bus).message_id == sent.message_id


# --------------------------------------------------------------------------- subject filters


@pytest.mark.parametrize(
    ("subject", "subscriptions"),
    [
        ("PaymentApproved", {SUB_NOTICE, SUB_RESERVATION}),
        ("PaymentDeclined", {SUB_NOTICE, SUB_RESERVATION}),
        ("PaymentCancelled", {SUB_NOTICE}),
        ("PaymentDeferred", set()),
    ],
)
def test_a_subscription_receives_only_the_subjects_its_filter_names(
    bus: Bus, subject: str, subscriptions: set[str]
) -> None:
    sent = message(subject=subject)
    bus.publish(TOPIC_PAYMENT, [sent])

    for subscription in (SUB_NOTICE, SUB_RESERVATION):
        expected = 1 if subscription in subscriptions else 0
        received = receive_exactly(bus, TOPIC_PAYMENT, subscription, expected)
        assert [m.message_id for m in received] == [sent.message_id] * expected


def test_a_subscription_without_filter_receives_every_subject(bus: Bus) -> None:
    bus.publish(TOPIC_RESERVATION, [message(subject="ReservationPlaced"), message(subject="X")])

    received = receive_exactly(bus, TOPIC_RESERVATION, SUB_PAYMENT, 2)

    assert {m.subject for m in received} == {"ReservationPlaced", "X"}


# --------------------------------------------------------------------------- concurrency


def test_ten_competing_receivers_get_each_of_a_thousand_messages_exactly_once(bus: Bus) -> None:
    sent = [message(body=str(i).encode()) for i in range(1_000)]
    for start in range(0, len(sent), 100):
        bus.publish(TOPIC_RESERVATION, sent[start : start + 100])
    delivered: list[str] = []
    delivered_lock = threading.Lock()
    failures: list[BaseException] = []

    def consume() -> None:
        try:
            idle_since = time.monotonic()
            while time.monotonic() - idle_since < 1.0:
                batch = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT, max_messages=5)
                if batch:
                    idle_since = time.monotonic()
                for received in batch:
                    bus.complete(received)
                    with delivered_lock:
                        delivered.append(received.message_id)
        except BaseException as error:  # surfaced by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=consume) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    counts = Counter(delivered)
    assert set(counts) == {m.message_id for m in sent}
    assert set(counts.values()) == {1}


# --------------------------------------------------------------------------- durability


def test_reopening_the_bus_loses_no_message_and_keeps_locks(backend: BusBackend) -> None:
    backend.bus.publish(TOPIC_RESERVATION, [message()])
    locked = receive_one(backend.bus)
    waiting = [message(subject=f"S{i}") for i in range(2)]
    backend.bus.publish(TOPIC_RESERVATION, waiting)

    backend.reopen()

    rest = receive_exactly(backend.bus, TOPIC_RESERVATION, SUB_PAYMENT, 2)
    assert [m.message_id for m in rest] == [m.message_id for m in waiting]
    backend.bus.complete(locked)
    for received in rest:
        backend.bus.complete(received)
    backend.advance(LOCK_SECONDS + 1)
    assert backend.bus.receive(TOPIC_RESERVATION, SUB_PAYMENT) == []
