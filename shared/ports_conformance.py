"""The Azure adapters checked against the ports by the type checker (`make lint` runs mypy).

Never called: each function returns an adapter as the port it implements, so a method missing
or with another signature fails type checking. The local stand-ins have theirs beside them
(devhost/embedded/ports_conformance.py, tests/support/ports_conformance.py).
"""

from __future__ import annotations

from shared.adapters.cosmos_store import CosmosDocumentStore
from shared.adapters.notice_senders import LogNoticeSender
from shared.adapters.payment_gateway import HttpPaymentGateway
from shared.adapters.servicebus_bus import ServiceBusPublisher
from shared.breaker import GuardedPaymentGateway
from shared.clock import SystemClock
from shared.ports import (
    AsyncDocumentStore,
    ChangeFeed,
    Clock,
    DocumentStore,
    MessagePublisher,
    NoticeSender,
    PaymentGateway,
)


def cosmos_store(
    adapter: CosmosDocumentStore,
) -> tuple[DocumentStore, AsyncDocumentStore, ChangeFeed]:
    return adapter, adapter, adapter


def service_bus(adapter: ServiceBusPublisher) -> MessagePublisher:
    return adapter


def payment_gateways(
    http: HttpPaymentGateway, guarded: GuardedPaymentGateway
) -> tuple[PaymentGateway, PaymentGateway]:
    return http, guarded


def notice_sender(adapter: LogNoticeSender) -> NoticeSender:
    return adapter


def clock(adapter: SystemClock) -> Clock:
    return adapter
