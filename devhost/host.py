"""One running host: the HTTP server and/or a trigger loop per Service Bus / Cosmos DB
function, over the same store and bus instances as the functions.

`python -m devhost` runs three: the HTTP host in its own process, and the Service Bus triggers
and the Cosmos DB triggers in a trigger host each (see devhost.children); a test may run all of
them in one.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import uvicorn

from devhost.app_loader import LoadedApp
from devhost.cosmos_trigger import CosmosTrigger, EmbeddedStore
from devhost.host_config import HostConfig, load_host_config
from devhost.http_app import FunctionsHttpApp
from devhost.invocation import Invoker
from devhost.metadata import (
    BACKGROUND_TRIGGERS,
    COSMOS_TRIGGER,
    HTTP_TRIGGER,
    SERVICE_BUS_TRIGGER,
    TIMER_TRIGGER,
    FunctionSpec,
    functions_of,
)
from devhost.servicebus_trigger import EmbeddedBus, ServiceBusTrigger
from devhost.timer_trigger import TimerTrigger

log = logging.getLogger("devhost")

Trigger = ServiceBusTrigger | CosmosTrigger | TimerTrigger


class Services(Protocol):
    @property
    def store(self) -> EmbeddedStore: ...

    @property
    def bus(self) -> EmbeddedBus: ...


@dataclass(frozen=True)
class Listen:
    host: str = "127.0.0.1"
    port: int = 7071


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
    """Serves HTTP on `listen` (None: no HTTP server) and drives the functions of the trigger
    kinds in `triggers` until SIGTERM/SIGINT or `request_stop`."""

    def __init__(
        self,
        loaded: LoadedApp,
        services: Services,
        listen: Listen | None = Listen(),
        *,
        triggers: frozenset[str] = BACKGROUND_TRIGGERS,
        shutdown_grace_seconds: float = 10.0,
    ) -> None:
        self._specs = functions_of(loaded.app)
        self._config: HostConfig = load_host_config(loaded.directory)
        self._services = services
        self._listen = listen
        self._trigger_kinds = triggers
        self._grace = shutdown_grace_seconds
        self._server: _Server | None = None
        self._stop_requested: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self) -> None:
        """Serve until SIGTERM/SIGINT (or `request_stop`), then stop everything cleanly."""
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        invoker = Invoker(self._loop)
        triggers = self._triggers(invoker)
        for trigger in triggers:
            trigger.start()
        self._announce()
        # Everything imported so far lives as long as the host: keep the collector from scanning
        # it again and again (a trivial request's p99 went from ~20 ms to ~3 ms under wrk).
        gc.freeze()
        try:
            if self._listen is not None:
                self._server = self._http_server(invoker, self._listen)
                await self._server.serve()
            else:
                with _stop_on_signals(self.request_stop):
                    await self._stop_requested.wait()
        finally:
            log.info("stopping %d trigger(s)", len(triggers))
            await asyncio.to_thread(self._stop, triggers)
            invoker.shutdown()
            log.info("host stopped")

    def request_stop(self) -> None:
        """Thread-safe."""
        if self._server is not None:
            self._server.should_exit = True
        if self._loop is not None and self._stop_requested is not None:
            self._loop.call_soon_threadsafe(self._stop_requested.set)

    def _http_server(self, invoker: Invoker, listen: Listen) -> _Server:
        app = FunctionsHttpApp(self._specs, self._config.route_prefix, invoker)
        return _Server(
            uvicorn.Config(
                app,
                host=listen.host,
                port=listen.port,
                http="httptools",
                lifespan="off",
                access_log=False,
                log_config=None,
                server_header=False,
                proxy_headers=False,
                timeout_graceful_shutdown=math.ceil(self._grace),
            )
        )

    def _stop(self, triggers: list[Trigger]) -> None:
        for trigger in triggers:
            trigger.request_stop()  # all at once: each may be in a wait of up to a second
        for trigger in triggers:
            trigger.stop(self._grace)

    def _triggers(self, invoker: Invoker) -> list[Trigger]:
        triggers: list[Trigger] = []
        leases: dict[tuple[str, str], str] = {}
        for spec in self._specs:
            if not _drivable(spec) or spec.trigger_type not in self._trigger_kinds:
                continue
            if spec.trigger_type == SERVICE_BUS_TRIGGER:
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
            elif spec.trigger_type == TIMER_TRIGGER:
                try:
                    timer = TimerTrigger(spec, self._services.store, invoker.call_from_thread)
                except ValueError as error:
                    log.error("%s: not hosted, its schedule is wrong: %s", spec.name, error)
                    continue
                triggers.append(timer)
        if any(isinstance(trigger, ServiceBusTrigger) for trigger in triggers):
            # Messages published by other processes (devhost's change-feed host relays the
            # outbox) wake these triggers at once too.
            self._services.bus.listen_for_rings()
        return triggers

    def _announce(self) -> None:
        """Log each function this host runs, and bindings devhost does not provide; a host that
        serves HTTP also names the functions devhost cannot run (once, whatever the processes)."""
        listen = self._listen
        base = f"http://{listen.host}:{listen.port}" if listen else ""
        prefix = f"/{self._config.route_prefix}" if self._config.route_prefix else ""
        for spec in self._specs:
            is_http = spec.trigger_type == HTTP_TRIGGER
            if is_http:
                hosted_here = listen is not None
            elif _drivable(spec):
                hosted_here = spec.trigger_type in self._trigger_kinds
            else:
                hosted_here = False
                if listen is not None:
                    log.error(
                        "%s: devhost cannot run this %s (only Service Bus topic subscriptions, "
                        "Cosmos DB change feeds and timers); the function is not hosted",
                        spec.name,
                        spec.trigger_type,
                    )
            if not hosted_here:
                continue
            unbound = [b["type"] for b in spec.bindings if b.get("name") != "$return"]
            if unbound:
                log.warning("%s: bindings %s are not provided by devhost", spec.name, unbound)
            log.info("function %s: %s", spec.name, _describe(spec, base + prefix))


@contextlib.contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM/SIGINT call `stop` (on the main thread's loop; elsewhere, only `stop` does)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    handled = (signal.SIGINT, signal.SIGTERM)
    for sig in handled:
        loop.add_signal_handler(sig, stop)
    try:
        yield
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def _drivable(spec: FunctionSpec) -> bool:
    """A background trigger devhost drives: a Service Bus topic subscription (not a queue), a
    Cosmos DB change feed or a timer."""
    if spec.trigger_type == SERVICE_BUS_TRIGGER:
        return "topicName" in spec.trigger
    return spec.trigger_type in BACKGROUND_TRIGGERS


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
    if spec.trigger_type == TIMER_TRIGGER:
        startup = ", and at startup" if trigger.get("runOnStartup") else ""
        return f"timerTrigger {trigger.get('schedule')!r}{startup}"
    return spec.trigger_type


def exit_now_if_functions_still_run(patience_seconds: float = 1.0) -> None:
    """Python joins thread-pool threads at exit, so one hung function call would keep the host
    from ever exiting. Its message was abandoned and its batch left unacknowledged (both come
    again after a restart): leave without waiting for it."""
    deadline = time.monotonic() + patience_seconds
    for thread in threading.enumerate():
        if not thread.daemon and thread is not threading.main_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
    lingering = [
        thread.name
        for thread in threading.enumerate()
        if thread.is_alive() and not thread.daemon and thread is not threading.main_thread()
    ]
    if lingering:
        log.warning("exiting with function calls still running in %s", lingering)
        logging.shutdown()
        sys.stdout.flush()
        os._exit(0)
