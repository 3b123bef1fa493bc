"""Composition: settings → adapters → the services the functions use.

One `Services` per process, built on first use and reused by every invocation (clients and
connections are expensive; Azure keeps the worker process warm between invocations). The
backends are chosen by configuration only: see `shared.settings`.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property, partial
from typing import Protocol, cast

from shared.api.auth import Authenticator
from shared.breaker import BreakerConfig, CircuitBreaker, GuardedPaymentGateway
from shared.clock import SystemClock
from shared.handlers.load_shedding import admit_new_order
from shared.handlers.musicals import MusicalDeps, MusicalDirectory
from shared.handlers.notices import NoticeDeps
from shared.handlers.payments import PaymentDeps
from shared.handlers.performances import PerformanceDirectory
from shared.handlers.readiness import BusCheck, CachedReadiness, ReadinessDeps
from shared.handlers.reservations import ReservationDeps
from shared.handlers.seated_reservations import SeatedDeps
from shared.handlers.sweeper import SweepDeps, SweepPolicy
from shared.ports import (
    AsyncDocumentStore,
    Clock,
    DocumentStore,
    MessagePublisher,
    NoticeSender,
    PaymentGateway,
)
from shared.retry_policy import payment_retry_delay
from shared.settings import Settings, get_settings


class BackendNotConfiguredError(RuntimeError):
    """Neither Azure's settings nor local backends say where documents or messages go."""


class LocalBackends(Protocol):
    """What the module named by `OUTERPARK_LOCAL_BACKENDS` provides (devhost.embedded.backends)."""

    def document_store(self) -> DocumentStore: ...

    def message_bus(self) -> MessagePublisher: ...

    def bus_check(self, bus: MessagePublisher) -> BusCheck: ...


@dataclass
class Services:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)

    @cached_property
    def store(self) -> DocumentStore:
        """The configured store, stamping trace contexts on the events it writes."""
        from shared.adapters.tracing import TracedDocumentStore

        store = self._backend_store()
        if self.settings.count_operations:
            from shared.adapters.counting import CountingDocumentStore

            store = CountingDocumentStore(store)
        return TracedDocumentStore(store)

    def _backend_store(self) -> DocumentStore:
        if self.settings.uses_cosmos:
            from shared.adapters.cosmos_store import CosmosDocumentStore

            return CosmosDocumentStore.from_settings(self.settings)
        return self._local_backends("CosmosDBConnection__accountEndpoint").document_store()

    @cached_property
    def async_store(self) -> AsyncDocumentStore:
        """The same store, awaited by async functions (both adapters implement both ports)."""
        store = self.store
        if not isinstance(store, AsyncDocumentStore):
            raise TypeError(f"{type(store).__name__} has no async operations")
        return store

    @cached_property
    def bus(self) -> MessagePublisher:
        """The configured bus, handing the current trace context on with every message."""
        from shared.adapters.tracing import TracedPublisher

        bus = self._backend_bus()
        if self.settings.count_operations:
            from shared.adapters.counting import CountingBus

            bus = CountingBus(bus)
        return TracedPublisher(bus)

    def _backend_bus(self) -> MessagePublisher:
        if self.settings.uses_service_bus:
            from shared.adapters.servicebus_bus import ServiceBusPublisher

            return ServiceBusPublisher.from_settings(self.settings)
        return self._local_backends("ServiceBusConnection__fullyQualifiedNamespace").message_bus()

    def _local_backends(self, azure_setting: str) -> LocalBackends:
        """The module that `OUTERPARK_LOCAL_BACKENDS` names, for what `azure_setting` does not."""
        path = self.settings.local_backends
        if path is None:
            raise BackendNotConfiguredError(
                f"no backend configured: set {azure_setting} (Azure) or OUTERPARK_LOCAL_BACKENDS "
                "(the import path of local backends, e.g. devhost.embedded.backends)"
            )
        return cast(LocalBackends, importlib.import_module(path))

    @cached_property
    def musical_deps(self) -> MusicalDeps:
        return MusicalDeps(store=self.store, clock=self.clock)

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
        return CircuitBreaker(
            self.store, BreakerConfig.from_settings(self.settings), clock=self.clock
        )

    @cached_property
    def gateway(self) -> PaymentGateway:
        """The HTTP gateway behind the breaker, each call a span (a refusal included)."""
        from shared.adapters.payment_gateway import HttpPaymentGateway
        from shared.adapters.tracing import TracedPaymentGateway

        http = HttpPaymentGateway.from_settings(self.settings)
        return TracedPaymentGateway(GuardedPaymentGateway(http, self.breaker))

    @cached_property
    def reservation_deps(self) -> ReservationDeps:
        """What the reservation handlers use: the API's, the saga's and the sweeper's."""
        return ReservationDeps(
            store=self.store,
            async_store=self.async_store,
            musicals=self.musicals,
            clock=self.clock,
            admit=partial(
                admit_new_order, self.settings.reservations_when_payment_down, self.breaker.state
            ),
        )

    @cached_property
    def seated_deps(self) -> SeatedDeps:
        """What the seated reservation handlers use: the API's, the saga's and the sweeper's."""
        return SeatedDeps(
            store=self.store,
            async_store=self.async_store,
            performances=self.performances,
            clock=self.clock,
            admit=self.reservation_deps.admit,
        )

    @property
    def payment_deadline(self) -> timedelta:
        """How long a reservation waits for its payment: the sweeper and the payments agree."""
        return timedelta(seconds=self.settings.payment_deadline_seconds)

    @cached_property
    def payment_deps(self) -> PaymentDeps:
        """What the payment handlers use: the payment function's and the sweeper's."""
        return PaymentDeps(
            store=self.store,
            gateway=self.gateway,
            bus=self.bus,
            clock=self.clock,
            retry_delay=partial(
                payment_retry_delay,
                base_seconds=self.settings.payment_retry_base_seconds,
                max_seconds=self.settings.payment_retry_max_seconds,
            ),
            # No confirm outlives four timeouts (the breaker's probe lease says the same).
            confirm_window=timedelta(seconds=4 * self.settings.gateway_timeout_seconds),
            payment_deadline=self.payment_deadline,
        )

    @cached_property
    def sweep_deps(self) -> SweepDeps:
        return SweepDeps(
            store=self.store,
            reservations=self.reservation_deps,
            seated=self.seated_deps,
            payments=self.payment_deps,
            notices=self.notice_deps,
            clock=self.clock,
            policy=SweepPolicy(
                payment_deadline=self.payment_deadline,
                repair_after=timedelta(seconds=self.settings.saga_repair_after_seconds),
            ),
        )

    @cached_property
    def notice_deps(self) -> NoticeDeps:
        """What the notice handler uses: the notice functions' and the sweeper's."""
        return NoticeDeps(store=self.store, sender=self.notice_sender, clock=self.clock)

    @cached_property
    def readiness(self) -> CachedReadiness:
        """The readiness probe's checks, run at most once per cache period per process."""
        return CachedReadiness(
            ReadinessDeps(
                store=self.store,
                bus=self._bus_check(),
                breaker_state=self.breaker.state,
                auth_configured=self.authenticator.configured,
            )
        )

    def _bus_check(self) -> BusCheck:
        """Service Bus when configured (the publisher's client), else the embedded bus."""
        namespace = self.settings.servicebus_namespace
        if namespace is not None:
            from shared.adapters.azure_credentials import azure_credential
            from shared.adapters.servicebus_bus import service_bus_client
            from shared.adapters.servicebus_probe import ServiceBusCheck

            credential = azure_credential(self.settings.managed_identity_client_id)
            return ServiceBusCheck(service_bus_client(namespace, credential))  # type: ignore[arg-type]  # hashable by identity
        local = self._local_backends("ServiceBusConnection__fullyQualifiedNamespace")
        return local.bus_check(self.bus)

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
