"""Readiness of Azure Service Bus: can this instance reach the namespace and read a topic?

A peek (no lock, nothing consumed) on one subscription proves the namespace answers and the
managed identity may receive, which is what the Service Bus triggers need. The backlog is not
reported: in Azure the trigger owns consumption and scales on it, and counting messages needs
the Manage right the app's identity does not have (Azure Monitor shows the counts).
"""

from __future__ import annotations

from azure.servicebus import ServiceBusClient

from shared.topology import SUB_PAYMENT, TOPIC_RESERVATION

PEEK_TIMEOUT_SECONDS = 5.0


class ServiceBusCheck:
    def __init__(self, client: ServiceBusClient) -> None:
        self._client = client

    def backlog(self) -> dict[str, int] | None:
        with self._client.get_subscription_receiver(TOPIC_RESERVATION, SUB_PAYMENT) as receiver:
            receiver.peek_messages(max_message_count=1, timeout=PEEK_TIMEOUT_SECONDS)
        return None
