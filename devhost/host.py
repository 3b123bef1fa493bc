"""One running host: the HTTP server, a trigger loop per Service Bus / Cosmos DB function, and
the expiry purger, all over the same store and bus instances as the functions."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import uvicorn

from devhost.app_loader import LoadedApp
from devhost.cosmos_trigger import CosmosTrigger, EmbeddedStore
from devhost.host_config import HostConfig, load_host_config
from devhost.http_app import FunctionsHttpApp
from devhost.invocation import Invoker
from devhost.metadata import FunctionSpec, functions_of
from devhost.priority import DEFAULT_BUSY_LIMIT, HttpFirstGate
from devhost.purge import ExpiryPurger
from devhost.servicebus_trigger import EmbeddedBus, ServiceBusTrigger

log = logging.getLogger("devhost")

HTTP_TRIGGER = "httpTrigger"
SERVICE_BUS_TRIGGER = "serviceBusTrigger"
COSMOS_TRIGGER = "cosmosDBTrigger"


class Services(Protocol):
    @property
    def store(self) -> EmbeddedStore: ...

    @property
    def bus(self) -> EmbeddedBus: ...


@dataclass(frozen=True)
class Listen:
    host: str = "127.0.0.1"
    port: int = 7071
    shutdown_grace_seconds: float = 10.0


class _Server(uvicorn.Server):
    """uvicorn re-raises a caught SIGTERM/SIGINT once it has stopped, which would kill the host
    before its triggers are stopped and its stores closed: here a signal only ends serving."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only; a host run elsewhere stops on request
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class DevHost:
    def __init__(
        self,
        loaded: LoadedApp,
        services: Services,
        listen: Listen = Listen(),
        background_when_busy: int = DEFAULT_BUSY_LIMIT,
    ) -> None:
        self._gate = HttpFirstGate(background_when_busy)
        self._specs = functions_of(loaded.app)
        self._config: HostConfig = load_host_config(loaded.directory)
        self._services = services
        self._listen = listen
        self._server: _Server | None = None

    async def serve(self) -> None:
        """Serve until SIGTERM/SIGINT (or `request_stop`), then stop everything cleanly."""
        invoker = Invoker(asyncio.get_running_loop(), gate=self._gate)
        triggers = self._triggers(invoker)
        purger = ExpiryPurger(self._services.store)
        app = FunctionsHttpApp(self._specs, self._config.route_prefix, invoker)
        self._server = _Server(
            uvicorn.Config(
                app,
                host=self._listen.host,
                port=self._listen.port,
                http="httptools",
                lifespan="off",
                access_log=False,
                log_config=None,
                server_header=False,
                proxy_headers=False,
                timeout_graceful_shutdown=math.ceil(self._listen.shutdown_grace_seconds),
            )
        )
        for trigger in triggers:
            trigger.start()
        purger.start()
        self._announce()
        # Everything imported so far lives as long as the host: keep the collector from scanning
        # it again and again (a trivial request's p99 went from ~20 ms to ~3 ms under wrk).
        gc.freeze()
        try:
            await self._server.serve()
        finally:
            log.info("stopping %d trigger(s)", len(triggers))
            await asyncio.to_thread(self._stop, triggers, purger)
            invoker.shutdown()
            log.info("host stopped")

    def request_stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    def _stop(
        self, triggers: list[ServiceBusTrigger | CosmosTrigger], purger: ExpiryPurger
    ) -> None:
        purger.stop()
        for trigger in triggers:
            trigger.stop(self._listen.shutdown_grace_seconds)

    def _triggers(self, invoker: Invoker) -> list[ServiceBusTrigger | CosmosTrigger]:
        triggers: list[ServiceBusTrigger | CosmosTrigger] = []
        leases: dict[tuple[str, str], str] = {}
        for spec in self._specs:
            if spec.trigger_type == SERVICE_BUS_TRIGGER and "topicName" in spec.trigger:
                if spec.retry is not None:
                    log.warning(
                        "%s: @app.retry does not apply to Service Bus triggers (the delivery "
                        "count and dead-lettering do); ignored, as in Azure",
                        spec.name,
                    )
                triggers.append(
                    ServiceBusTrigger(
                        spec, self._services.bus, invoker.call_from_thread, self._config.service_bus
                    )
                )
            elif spec.trigger_type == COSMOS_TRIGGER:
                trigger = CosmosTrigger(spec, self._services.store, invoker.call_from_thread)
                lease = (trigger.container, trigger.lease_prefix)
                if lease in leases:
                    log.warning(
                        "%s and %s share the lease %s of %s: give each its own "
                        "leaseContainerPrefix, or they split the changes between them",
                        leases[lease],
                        spec.name,
                        trigger.lease_prefix or "(no prefix)",
                        trigger.container,
                    )
                leases[lease] = spec.name
                triggers.append(trigger)
            elif spec.trigger_type != HTTP_TRIGGER:
                log.error(
                    "%s: devhost cannot run %s triggers; the function is not hosted",
                    spec.name,
                    spec.trigger_type,
                )
        return triggers

    def _announce(self) -> None:
        base = f"http://{self._listen.host}:{self._listen.port}"
        prefix = f"/{self._config.route_prefix}" if self._config.route_prefix else ""
        for spec in self._specs:
            unbound = [b["type"] for b in spec.bindings if b.get("name") != "$return"]
            if unbound:
                log.warning("%s: bindings %s are not provided by devhost", spec.name, unbound)
            log.info("function %s: %s", spec.name, _describe(spec, base + prefix))


def _describe(spec: FunctionSpec, base_url: str) -> str:
    trigger = spec.trigger
    if spec.trigger_type == HTTP_TRIGGER:
        methods = ",".join(trigger.get("methods") or ["*"])
        return f"[{methods}] {base_url}/{trigger.get('route') or spec.name}"
    if spec.trigger_type == SERVICE_BUS_TRIGGER:
        return f"serviceBusTrigger {trigger.get('topicName')}/{trigger.get('subscriptionName')}"
    if spec.trigger_type == COSMOS_TRIGGER:
        lease = trigger.get("leaseContainerPrefix") or ""
        return f"cosmosDBTrigger {trigger.get('containerName')} (lease prefix {lease!r})"
    return spec.trigger_type
