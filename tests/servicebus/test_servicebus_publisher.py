"""ServiceBusPublisher at the SDK boundary: the messages it builds and how it sends them.

No Service Bus namespace is reachable here, so the topic sender is the one thing replaced: by
a recorder that keeps what would have gone on the wire (real SDK messages and batches).
"""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusMessageBatch
from azure.servicebus.exceptions import (
    MessageSizeExceededError,
    ServiceBusConnectionError,
    ServiceBusError,
)

from shared.adapters.servicebus_bus import ServiceBusPublisher, service_bus_message
from shared.ports import OutboundMessage
from shared.settings import Settings
from shared.topology import TOPIC_CANCEL, TOPIC_PAYMENT, TOPIC_RESERVATION


class RecordingBatch(ServiceBusMessageBatch):
    """A real batch (same size accounting) that also remembers what was added, in order."""

    def __init__(self, max_size_in_bytes: int) -> None:
        super().__init__(max_size_in_bytes=max_size_in_bytes)
        self.added: list[ServiceBusMessage] = []

    def add_message(self, message: ServiceBusMessage) -> None:  # type: ignore[override]
        super().add_message(message)
        self.added.append(message)


class RecordingSender:
    """Stands in for ServiceBusSender: real batches, sends recorded instead of transmitted."""

    def __init__(self, topic: str, batch_size: int = 256 * 1024) -> None:
        self.topic = topic
        self.batch_size = batch_size
        self.sent: list[ServiceBusMessage | ServiceBusMessageBatch] = []
        self.closed = False
        self.fail_with: Exception | None = None

    def create_message_batch(self) -> RecordingBatch:
        return RecordingBatch(self.batch_size)

    def send_messages(self, message: ServiceBusMessage | ServiceBusMessageBatch) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message)

    def close(self) -> None:
        self.closed = True


class SenderFactory:
    def __init__(self, batch_size: int = 256 * 1024) -> None:
        self.batch_size = batch_size
        self.opened: list[RecordingSender] = []
        self._lock = threading.Lock()

    def __call__(self, topic: str) -> RecordingSender:
        sender = RecordingSender(topic, self.batch_size)
        with self._lock:
            self.opened.append(sender)
        return sender


def outbound(number: int = 1, **overrides: object) -> OutboundMessage:
    fields: dict[str, object] = {
        "body": f'{{"n": {number}}}'.encode(),
        "message_id": f"event-{number}",
        "subject": "ReservationPlaced",
    }
    fields.update(overrides)
    return OutboundMessage(**fields)  # type: ignore[arg-type]


def test_every_field_of_the_port_message_reaches_the_sdk_message() -> None:
    when = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    message = service_bus_message(
        OutboundMessage(
            body=b'{"reservationId": "r1"}',
            message_id="evt-1",
            subject="ReservationPlaced",
            correlation_id="corr-1",
            content_type="application/json",
            application_properties={"musicalId": "m1", "seats": 2, "retry": True},
            scheduled_enqueue_time=when,
        )
    )

    assert b"".join(message.body) == b'{"reservationId": "r1"}'
    assert message.message_id == "evt-1"
    assert message.subject == "ReservationPlaced"
    assert message.correlation_id == "corr-1"
    assert message.content_type == "application/json"
    assert message.application_properties == {"musicalId": "m1", "seats": 2, "retry": True}
    assert message.scheduled_enqueue_time_utc == when


def test_an_unscheduled_message_without_properties_leaves_those_fields_empty() -> None:
    message = service_bus_message(outbound())

    assert message.scheduled_enqueue_time_utc is None
    assert not message.application_properties
    assert message.correlation_id is None


def test_a_single_message_is_sent_as_it_is() -> None:
    senders = SenderFactory()
    publisher = ServiceBusPublisher(senders)

    publisher.publish(TOPIC_RESERVATION, [outbound(1, correlation_id="c-1")])

    [sender] = senders.opened
    assert sender.topic == TOPIC_RESERVATION
    [sent] = sender.sent
    assert isinstance(sent, ServiceBusMessage)
    assert sent.message_id == "event-1"
    assert sent.correlation_id == "c-1"


def test_several_messages_go_out_together_in_one_batch() -> None:
    senders = SenderFactory()
    publisher = ServiceBusPublisher(senders)

    publisher.publish(TOPIC_PAYMENT, [outbound(n) for n in range(5)])

    [sender] = senders.opened
    [batch] = sender.sent
    assert isinstance(batch, ServiceBusMessageBatch)
    assert len(batch) == 5


def test_messages_that_overflow_a_batch_spill_into_the_next_in_order() -> None:
    senders = SenderFactory(batch_size=1_000)
    publisher = ServiceBusPublisher(senders)
    messages = [outbound(n, body=b"x" * 300) for n in range(7)]

    publisher.publish(TOPIC_PAYMENT, messages)

    [sender] = senders.opened
    batches = sender.sent
    assert len(batches) > 1
    assert all(isinstance(batch, RecordingBatch) for batch in batches)
    assert sum(len(batch) for batch in batches) == 7  # type: ignore[arg-type]
    sent_ids = [m.message_id for batch in batches for m in batch.added]  # type: ignore[union-attr]
    assert sent_ids == [f"event-{n}" for n in range(7)]


def test_a_message_too_large_for_any_batch_raises_instead_of_being_dropped() -> None:
    senders = SenderFactory(batch_size=1_000)
    publisher = ServiceBusPublisher(senders)

    with pytest.raises(MessageSizeExceededError):
        publisher.publish(TOPIC_PAYMENT, [outbound(1), outbound(2, body=b"x" * 5_000)])


def test_scheduled_messages_carry_their_enqueue_time_through_the_batch() -> None:
    senders = SenderFactory()
    publisher = ServiceBusPublisher(senders)
    later = datetime.now(UTC) + timedelta(seconds=30)

    publisher.publish(TOPIC_PAYMENT, [outbound(1), outbound(2, scheduled_enqueue_time=later)])

    [batch] = senders.opened[0].sent
    times = [m.scheduled_enqueue_time_utc for m in batch.added]  # type: ignore[union-attr]
    assert times == [None, later]


def test_publishing_nothing_opens_no_sender() -> None:
    senders = SenderFactory()

    ServiceBusPublisher(senders).publish(TOPIC_CANCEL, [])

    assert senders.opened == []


def test_one_sender_per_topic_is_opened_and_reused() -> None:
    senders = SenderFactory()
    publisher = ServiceBusPublisher(senders)

    for n in range(3):
        publisher.publish(TOPIC_RESERVATION, [outbound(n)])
        publisher.publish(TOPIC_CANCEL, [outbound(n)])

    assert sorted(sender.topic for sender in senders.opened) == [TOPIC_CANCEL, TOPIC_RESERVATION]
    assert all(len(sender.sent) == 3 for sender in senders.opened)


def test_threads_publishing_at_once_share_one_sender_per_topic() -> None:
    senders = SenderFactory()
    publisher = ServiceBusPublisher(senders)
    start = threading.Barrier(8)

    def publish(n: int) -> None:
        start.wait()
        publisher.publish(TOPIC_RESERVATION, [outbound(n)])

    threads = [threading.Thread(target=publish, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    [sender] = senders.opened
    assert sorted(m.message_id for m in sender.sent) == sorted(f"event-{n}" for n in range(8))  # type: ignore[union-attr]


def test_a_failed_send_reaches_the_caller() -> None:
    senders = SenderFactory()
    publisher = ServiceBusPublisher(senders)
    publisher.publish(TOPIC_RESERVATION, [outbound(0)])
    senders.opened[0].fail_with = ServiceBusError("namespace unavailable")

    with pytest.raises(ServiceBusError, match="namespace unavailable"):
        publisher.publish(TOPIC_RESERVATION, [outbound(1), outbound(2)])


def test_closing_the_publisher_closes_every_sender() -> None:
    senders = SenderFactory()
    publisher = ServiceBusPublisher(senders)
    publisher.publish(TOPIC_RESERVATION, [outbound()])
    publisher.publish(TOPIC_PAYMENT, [outbound()])

    publisher.close()

    assert [sender.closed for sender in senders.opened] == [True, True]


def closed_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_real_client_that_cannot_connect_raises_a_connection_error() -> None:
    client = ServiceBusClient(
        f"127.0.0.1:{closed_loopback_port()}",
        AzureNamedKeyCredential("RootManageSharedAccessKey", "not-a-real-key"),
        retry_total=0,
    )
    publisher = ServiceBusPublisher.for_client(client)

    with pytest.raises(ServiceBusConnectionError):
        publisher.publish(TOPIC_RESERVATION, [outbound()])
    publisher.close()
    client.close()


def test_the_publisher_needs_a_namespace_in_the_settings() -> None:
    with pytest.raises(ValueError, match="fullyQualifiedNamespace"):
        ServiceBusPublisher.from_settings(Settings(servicebus_namespace=None))
