"""Azure Service Bus: the MessagePublisher port, and what a Service Bus trigger hands a function.

Publishing: one ServiceBusClient per process (managed identity), one cached sender per topic.
Several messages go out in as few `ServiceBusMessageBatch`es as their size allows; a scheduled
message carries its `scheduled_enqueue_time_utc`, which Service Bus honours on send. A failed
send raises: the caller (the outbox relay) retries, and the topic's duplicate detection drops
the copies of messages that had already gone out, by `message_id`.

Consuming is the Functions Service Bus trigger's job; `message_fields` reads its message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any, Protocol, cast

from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusMessageBatch
from azure.servicebus.exceptions import MessageSizeExceededError

from shared.adapters.azure_credentials import azure_credential
from shared.ports import OutboundMessage
from shared.settings import Settings

# Each send is retried by the SDK this many times (exponential backoff up to the maximum)
# before the error reaches the caller.
SEND_RETRY_ATTEMPTS = 3
SEND_RETRY_BACKOFF_SECONDS = 0.5
SEND_RETRY_BACKOFF_MAX_SECONDS = 8


class TopicSender(Protocol):
    """The part of `azure.servicebus.ServiceBusSender` the publisher uses."""

    def create_message_batch(self) -> ServiceBusMessageBatch: ...

    def send_messages(self, message: ServiceBusMessage | ServiceBusMessageBatch) -> None: ...

    def close(self) -> None: ...


def service_bus_message(message: OutboundMessage) -> ServiceBusMessage:
    """The SDK message for a port message, every field carried over."""
    return ServiceBusMessage(
        message.body,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        subject=message.subject,
        content_type=message.content_type,
        # JSON scalars: the SDK's annotation leaves out None, which it sends all the same.
        application_properties=cast(Any, dict(message.application_properties)) or None,
        scheduled_enqueue_time_utc=message.scheduled_enqueue_time,
    )


class _CachedSender:
    """A topic's sender with the lock that serializes its sends (senders are not thread-safe)."""

    def __init__(self, sender: TopicSender) -> None:
        self.sender = sender
        self.lock = threading.Lock()


class ServiceBusPublisher:
    """MessagePublisher over Service Bus topics."""

    def __init__(self, open_sender: Callable[[str], TopicSender]) -> None:
        self._open_sender = open_sender
        self._senders: dict[str, _CachedSender] = {}
        self._senders_lock = threading.Lock()

    @classmethod
    def for_client(cls, client: ServiceBusClient) -> ServiceBusPublisher:
        return cls(lambda topic: client.get_topic_sender(topic_name=topic))

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceBusPublisher:
        if settings.servicebus_namespace is None:
            raise ValueError("ServiceBusConnection__fullyQualifiedNamespace is not set")
        return cls.for_client(
            service_bus_client(
                settings.servicebus_namespace,
                azure_credential(settings.managed_identity_client_id),  # type: ignore[arg-type]  # hashable by identity
            )
        )

    def publish(self, topic: str, messages: Sequence[OutboundMessage]) -> None:
        if not messages:
            return
        cached = self._sender(topic)
        with cached.lock:
            if len(messages) == 1:
                cached.sender.send_messages(service_bus_message(messages[0]))
                return
            for batch in _batches(cached.sender, map(service_bus_message, messages)):
                cached.sender.send_messages(batch)

    def _sender(self, topic: str) -> _CachedSender:
        with self._senders_lock:
            cached = self._senders.get(topic)
            if cached is None:
                cached = self._senders[topic] = _CachedSender(self._open_sender(topic))
            return cached

    def close(self) -> None:
        with self._senders_lock:
            senders, self._senders = list(self._senders.values()), {}
        for cached in senders:
            with cached.lock:
                cached.sender.close()


def _batches(
    sender: TopicSender, messages: Iterable[ServiceBusMessage]
) -> Iterable[ServiceBusMessageBatch]:
    """Fill batches in order; a message too large even for an empty batch raises."""
    batch = sender.create_message_batch()
    for message in messages:
        try:
            batch.add_message(message)
        except MessageSizeExceededError:
            if len(batch) == 0:
                raise
            yield batch
            batch = sender.create_message_batch()
            batch.add_message(message)
    if len(batch):
        yield batch


@lru_cache(maxsize=4)
def service_bus_client(fully_qualified_namespace: str, credential: Any) -> ServiceBusClient:
    """A client with the publisher's retry limits (one per process: see `from_settings`)."""
    return ServiceBusClient(
        fully_qualified_namespace,
        credential,
        retry_total=SEND_RETRY_ATTEMPTS,
        retry_backoff_factor=SEND_RETRY_BACKOFF_SECONDS,
        retry_backoff_max=SEND_RETRY_BACKOFF_MAX_SECONDS,
    )
