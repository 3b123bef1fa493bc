"""What the app's logs and spans look like to Application Insights: the real Azure Monitor
distro, configured as the deployed app configures it, exporting to a local HTTP endpoint that
stands in for the ingestion service (the connection string's `IngestionEndpoint`)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.infra.bicep_tree import REPO, module, resource_config

# Run in a process of its own: the distro sets the process's global OpenTelemetry providers.
APP = """
import logging

from opentelemetry import trace
from opentelemetry._logs import get_logger_provider

from shared.adapters.azure_monitor import configure_azure_monitor_if_set
from shared.observability import correlation
from shared.settings import Settings

assert configure_azure_monitor_if_set(Settings())
log = logging.getLogger("outerpark.reservations")
log.setLevel(logging.INFO)
with trace.get_tracer("outerpark").start_as_current_span("POST /reservations"):
    with correlation("corr-77"):
        log.info("reservation placed", extra={"reservation_id": "r-1"})
get_logger_provider().force_flush()
trace.get_tracer_provider().force_flush()
"""


class _Ingestion(BaseHTTPRequestHandler):
    envelopes: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.envelopes.extend(json.loads(body))
        answer = json.dumps({"itemsReceived": 1, "itemsAccepted": 1, "errors": []}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def ingestion() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Ingestion", (_Ingestion,), {"envelopes": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port, received
    server.shutdown()


def test_a_log_line_reaches_application_insights_with_its_correlation_and_reservation_ids(
    ingestion: tuple[int, list[dict[str, Any]]],
) -> None:
    port, received = ingestion
    deployed = resource_config(module("functionapp"), "appSettings")["properties"]
    environment = {
        **os.environ,
        # The sampler as deployed: the distro's default keeps 5 traces a second, dropping some.
        "OTEL_TRACES_SAMPLER": deployed["OTEL_TRACES_SAMPLER"],
        "OTEL_TRACES_SAMPLER_ARG": deployed["OTEL_TRACES_SAMPLER_ARG"],
        "APPLICATIONINSIGHTS_CONNECTION_STRING": (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            f"IngestionEndpoint=http://127.0.0.1:{port}/"
        ),
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        "PYTHONPATH": str(REPO),
    }
    environment.pop("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", None)

    run = subprocess.run(
        [sys.executable, "-c", APP],
        check=False,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert run.returncode == 0, run.stderr
    messages = [e for e in received if e["data"]["baseType"] == "MessageData"]
    spans = [e for e in received if e["data"]["baseType"] == "RemoteDependencyData"]
    assert [m["data"]["baseData"]["message"] for m in messages] == ["reservation placed"]
    properties = messages[0]["data"]["baseData"]["properties"]
    assert properties["correlation_id"] == "corr-77"  # set by CorrelationFilter, not by `extra`
    assert properties["reservation_id"] == "r-1"
    # The line belongs to the span it was logged in (KQL: AppTraces joined on OperationId).
    assert [s["data"]["baseData"]["name"] for s in spans] == ["POST /reservations"]
    assert messages[0]["tags"]["ai.operation.id"] == spans[0]["tags"]["ai.operation.id"]
    assert messages[0]["tags"]["ai.operation.parentId"] == spans[0]["data"]["baseData"]["id"]
