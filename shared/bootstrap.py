"""Composition: settings → adapters → the services the functions use.

One `Services` per process, built on first use and reused by every invocation (clients and
connections are expensive; Azure keeps the worker process warm between invocations). The
backends are chosen by configuration only: see `shared.settings`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property

from shared.api.auth import Authenticator
from shared.breaker import BreakerConfig, CircuitBreaker, GuardedPaymentGateway
from shared.clock import SystemClock
from shared.handlers.musicals import MusicalDirectory
from shared.handlers.performances import PerformanceDirectory
from shared.ports import (
    AsyncDocumentStore,
    Clock,
    DocumentStore,
    MessagePublisher,
    NoticeSender,
    PaymentGateway,
)
from shared.settings import Settings, get_settings


@dataclass
class Services:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)

    @cached_property
    def store(self) -> DocumentStore:
        if self.settings.uses_cosmos:
            from shared.adapters.cosmos_store import CosmosDocumentStore

            return CosmosDocumentStore.from_settings(self.settings)
        if self.settings.store_socket is not None:
            from shared.adapters.sqlite_store_client import SqliteStoreClient

            return SqliteStoreClient(
                self.settings.data_dir,
                self.settings.store_socket,
                priority=self.settings.store_priority,
            )
        from shared.adapters.sqlite_store import SqliteDocumentStore

        return SqliteDocumentStore(self.settings.data_dir)

    @cached_property
    def async_store(self) -> AsyncDocumentStore:
        """The same store, awaited by async functions (both adapters implement both ports)."""
        store = self.store
        if not isinstance(store, AsyncDocumentStore):
            raise TypeError(f"{type(store).__name__} has no async operations")
        return store

    @cached_property
    def bus(self) -> MessagePublisher:
        if self.settings.uses_service_bus:
            from shared.adapters.servicebus_bus import ServiceBusPublisher

            return ServiceBusPublisher.from_settings(self.settings)
        from shared.adapters.sqlite_bus import SqliteMessageBus

        return SqliteMessageBus(self.settings.data_dir, rings=self.settings.bus_rings)

    @cached_property
    def musicals(self) -> MusicalDirectory:
        return MusicalDirectory(self.store)

    @cached_property
    def performances(self) -> PerformanceDirectory:
        return PerformanceDirectory()

    @cached_property
    def authenticator(self) -> Authenticator:
        return Authenticator(self.settings)

    @cached_property
    def breaker(self) -> CircuitBreaker:
        return CircuitBreaker(self.store, BreakerConfig.from_settings(self.settings))

    @cached_property
    def gateway(self) -> PaymentGateway:
        from shared.adapters.payment_gateway import HttpPaymentGateway

        return GuardedPaymentGateway(HttpPaymentGateway.from_settings(self.settings), self.breaker)

    @cached_property
    def notice_sender(self) -> NoticeSender:
        from shared.adapters.notice_senders import sender_for

        return sender_for(self.settings)


_lock = threading.Lock()
_services: Services | None = None


def get_services() -> Services:
    """The process's services (thread-safe, built once)."""
    global _services  # noqa: PLW0603 - the process-wide composition root
    if _services is None:
        with _lock:
            if _services is None:
                _services = Services(get_settings())
    return _services
