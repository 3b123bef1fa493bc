"""The whole host in-process: HTTP and a trigger over embedded backends, then a clean stop."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import azure.functions as func
import httpx
import pytest

from devhost.app_loader import LoadedApp
from devhost.embedded.sqlite_bus import SqliteMessageBus
from devhost.embedded.sqlite_store import SqliteDocumentStore
from devhost.host import DevHost, Listen
from devhost.metadata import COSMOS_TRIGGER
from shared.ports import OutboundMessage
from tests.support.devhost_process import free_port
from tests.support.eventually import eventually


@dataclass
class Backends:
    store: SqliteDocumentStore
    bus: SqliteMessageBus


def ping_and_cancel_app(seen: list[str]) -> func.FunctionApp:
    """GET ping → pong, and a Service Bus trigger on cancel/payment noting each message's id."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="ping", methods=["GET"])
    def ping(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("pong")

    @app.service_bus_topic_trigger(
        arg_name="msg", topic_name="cancel", subscription_name="payment", connection="C"
    )
    def on_cancel(msg: func.ServiceBusMessage) -> None:
        seen.append(json.loads(msg.get_body())["id"])

    return app


def test_a_host_serves_http_and_drives_triggers_until_asked_to_stop(tmp_path: Path) -> None:
    seen: list[str] = []
    app = ping_and_cancel_app(seen)
    (tmp_path / "host.json").write_text('{"extensions": {"http": {"routePrefix": "v1"}}}')
    backends = Backends(SqliteDocumentStore(tmp_path), SqliteMessageBus(tmp_path))
    port = free_port()
    host = DevHost(LoadedApp(app, tmp_path), backends, Listen(port=port), shutdown_grace_seconds=1)
    serving = threading.Thread(target=lambda: asyncio.run(host.serve()))
    serving.start()
    try:
        pong = eventually(lambda: _get(f"http://127.0.0.1:{port}/v1/ping"))
        backends.bus.publish(
            "cancel", [OutboundMessage(body=b'{"id": "r-1"}', message_id="x", subject="Cancel")]
        )
        eventually(lambda: seen == ["r-1"])
    finally:
        host.request_stop()
        serving.join(10)
        backends.bus.close()
        backends.store.close()

    assert pong.text == "pong"
    assert not serving.is_alive()


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url)
    except httpx.TransportError:
        return None


def test_a_host_drives_only_the_trigger_kinds_it_is_given_and_names_what_devhost_cannot_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    app = ping_and_cancel_app(seen)

    @app.service_bus_queue_trigger(arg_name="msg", queue_name="orders", connection="C")
    def on_order(msg: func.ServiceBusMessage) -> None:
        seen.append("order")

    backends = Backends(SqliteDocumentStore(tmp_path), SqliteMessageBus(tmp_path))
    port = free_port()
    host = DevHost(
        LoadedApp(app, tmp_path),
        backends,
        Listen(port=port),
        triggers=frozenset({COSMOS_TRIGGER}),
        shutdown_grace_seconds=1,
    )
    serving = threading.Thread(target=lambda: asyncio.run(host.serve()))
    with caplog.at_level(logging.INFO, logger="devhost"):
        serving.start()
        try:
            eventually(lambda: _get(f"http://127.0.0.1:{port}/api/ping"))
            backends.bus.publish(
                "cancel", [OutboundMessage(body=b'{"id": "r-1"}', message_id="x", subject="Cancel")]
            )
            time.sleep(0.5)
            waiting = backends.bus.active_count("cancel", "payment")
        finally:
            host.request_stop()
            serving.join(10)
            backends.bus.close()
            backends.store.close()

    assert seen == []
    assert waiting == 1  # left for the host that drives Service Bus triggers
    announced = [r.getMessage() for r in caplog.records if r.getMessage().startswith("function ")]
    assert [line.split(":")[0] for line in announced] == ["function ping"]
    assert "on_order: devhost cannot run this serviceBusTrigger" in caplog.text
