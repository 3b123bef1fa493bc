"""The bus contract suite against a real Service Bus namespace (used when SERVICEBUS_FQDN is set).

Publishing goes through the production `ServiceBusPublisher`; receiving uses a peek-lock
`ServiceBusReceiver` per subscription (in Azure the Functions trigger receives instead). The
namespace must hold `shared.topology.TOPICS` and be used by one test process at a time: each
backend drains every subscription, dead-letter queues included, before its test. Credentials:
DefaultAzureCredential ("Azure Service Bus Data Owner" on the namespace).

No namespace is reachable where this was written: this backend has not been run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from azure.servicebus import (
    ServiceBusClient,
    ServiceBusReceivedMessage,
    ServiceBusReceiveMode,
    ServiceBusReceiver,
    ServiceBusSubQueue,
)
from azure.servicebus.exceptions import MessageLockLostError

from shared.adapters.azure_credentials import azure_credential
from shared.adapters.servicebus_bus import ServiceBusPublisher
from shared.ports import LockLost, OutboundMessage, ReceivedMessage
from shared.topology import TOPICS

RECEIVE_WAIT_SECONDS = 1


class ServiceBusTestBus:
    """MessagePublisher and MessageReceiver over one namespace."""

    def __init__(self, client: ServiceBusClient) -> None:
        self._client = client
        self._publisher = ServiceBusPublisher.for_client(client)
        self._receivers: dict[tuple[str, str], ServiceBusReceiver] = {}
        self._locked: dict[str, tuple[ServiceBusReceiver, ServiceBusReceivedMessage]] = {}

    def publish(self, topic: str, messages: Sequence[OutboundMessage]) -> None:
        self._publisher.publish(topic, messages)

    def receive(
        self, topic: str, subscription: str, max_messages: int = 1
    ) -> list[ReceivedMessage]:
        key = (topic, subscription)
        if key not in self._receivers:
            self._receivers[key] = self._client.get_subscription_receiver(topic, subscription)
        receiver = self._receivers[key]
        received = receiver.receive_messages(
            max_message_count=max_messages, max_wait_time=RECEIVE_WAIT_SECONDS
        )
        for message in received:
            self._locked[str(message.lock_token)] = (receiver, message)
        return [port_message(message, topic, subscription) for message in received]

    def complete(self, message: ReceivedMessage) -> None:
        self._settle(message, lambda receiver, raw: receiver.complete_message(raw))

    def abandon(self, message: ReceivedMessage) -> None:
        self._settle(message, lambda receiver, raw: receiver.abandon_message(raw))

    def dead_letter(self, message: ReceivedMessage, reason: str, description: str = "") -> None:
        self._settle(
            message,
            lambda receiver, raw: receiver.dead_letter_message(
                raw, reason=reason, error_description=description
            ),
        )

    def renew_lock(self, message: ReceivedMessage) -> datetime:
        receiver, raw = self._held(message)
        try:
            return receiver.renew_message_lock(raw)
        except MessageLockLostError as error:
            raise LockLost(str(error)) from error

    def _held(
        self, message: ReceivedMessage
    ) -> tuple[ServiceBusReceiver, ServiceBusReceivedMessage]:
        held = self._locked.get(message.lock_token)
        if held is None:
            raise LockLost("this message was settled already")
        return held

    def _settle(
        self,
        message: ReceivedMessage,
        settle: Callable[[ServiceBusReceiver, ServiceBusReceivedMessage], None],
    ) -> None:
        receiver, raw = self._held(message)
        try:
            settle(receiver, raw)
        except MessageLockLostError as error:
            raise LockLost(str(error)) from error
        finally:
            self._locked.pop(message.lock_token, None)

    def close(self) -> None:
        for receiver in self._receivers.values():
            receiver.close()
        self._publisher.close()


def port_message(
    message: ServiceBusReceivedMessage, topic: str, subscription: str
) -> ReceivedMessage:
    """The port's view of a received message. The SDK counts earlier deliveries (0 on the
    first); the port, like the Functions trigger, counts this one too."""
    properties = message.application_properties or {}
    return ReceivedMessage(
        body=b"".join(message.body),
        message_id=str(message.message_id),
        subject=message.subject or "",
        correlation_id=message.correlation_id,
        content_type=message.content_type or "",
        application_properties={
            key.decode() if isinstance(key, bytes) else key: value
            for key, value in properties.items()
        },
        delivery_count=(message.delivery_count or 0) + 1,
        sequence_number=message.sequence_number or 0,
        enqueued_time=message.enqueued_time_utc or datetime.now(UTC),
        lock_token=str(message.lock_token),
        locked_until=message.locked_until_utc or datetime.now(UTC),
        topic=topic,
        subscription=subscription,
        dead_letter_reason=message.dead_letter_reason,
        dead_letter_error_description=message.dead_letter_error_description,
    )


class ServiceBusBackend:
    """BusBackend over the namespace SERVICEBUS_FQDN names; bus time is wall-clock time."""

    def __init__(self, fully_qualified_namespace: str) -> None:
        self._client = ServiceBusClient(
            fully_qualified_namespace, azure_credential(os.environ.get("AZURE_CLIENT_ID"))
        )
        self._drain_everything()
        self.bus = ServiceBusTestBus(self._client)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        time.sleep(seconds)

    def dead_letters(self, topic: str, subscription: str) -> list[ReceivedMessage]:
        with self._client.get_subscription_receiver(
            topic, subscription, sub_queue=ServiceBusSubQueue.DEAD_LETTER
        ) as receiver:
            peeked = receiver.peek_messages(max_message_count=100)
        return [port_message(message, topic, subscription) for message in peeked]

    def reopen(self) -> None:
        self.bus.close()
        self.bus = ServiceBusTestBus(self._client)

    def close(self) -> None:
        self.bus.close()
        self._client.close()

    def _drain_everything(self) -> None:
        for topic in TOPICS.values():
            for subscription in topic.subscriptions:
                for sub_queue in (None, ServiceBusSubQueue.DEAD_LETTER):
                    with self._client.get_subscription_receiver(
                        topic.name,
                        subscription.name,
                        sub_queue=sub_queue,
                        receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE,
                    ) as receiver:
                        while receiver.receive_messages(max_message_count=100, max_wait_time=1):
                            pass


def make_backend(tmp_path: Path) -> ServiceBusBackend:
    """The factory `bus_backends.backend_factories()` imports when SERVICEBUS_FQDN is set."""
    del tmp_path  # the namespace holds the state
    return ServiceBusBackend(os.environ["SERVICEBUS_FQDN"])
