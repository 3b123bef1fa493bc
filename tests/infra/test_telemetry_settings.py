"""Traces in Azure: the host exports OpenTelemetry and the worker hands the app its context."""

from __future__ import annotations

import json

from tests.infra.bicep_tree import REPO, module, resource_config


def test_the_functions_host_exports_opentelemetry() -> None:
    host = json.loads((REPO / "host.json").read_text(encoding="utf-8"))
    assert host["telemetryMode"] == "OpenTelemetry"


def test_the_python_worker_continues_the_hosts_traces_and_leaves_the_distro_to_the_app() -> None:
    settings = resource_config(module("functionapp"), "appSettings")["properties"]
    assert settings["PYTHON_ENABLE_OPENTELEMETRY"] == "true"
    assert "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY" not in settings
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in settings


def test_every_trace_is_kept_by_a_sampler_that_decides_by_trace_id() -> None:
    settings = resource_config(module("functionapp"), "appSettings")["properties"]
    assert settings["OTEL_TRACES_SAMPLER"] == "microsoft.fixed_percentage"
    assert float(settings["OTEL_TRACES_SAMPLER_ARG"]) == 1.0
