"""The Azure Monitor distro is configured by the app only when Application Insights is named,
and never twice."""

from __future__ import annotations

import logging

import pytest

from shared.adapters import azure_monitor
from shared.settings import Settings

CONNECTION = "InstrumentationKey=00000000-0000-0000-0000-000000000000"


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    calls: list[dict] = []
    monkeypatch.setattr(
        "azure.monitor.opentelemetry.configure_azure_monitor", lambda **kw: calls.append(kw)
    )
    monkeypatch.delenv(azure_monitor.WORKER_CONFIGURES_DISTRO, raising=False)
    monkeypatch.delenv(azure_monitor.AUTHENTICATION_STRING, raising=False)
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    return calls


def test_without_a_connection_string_nothing_is_configured(configured) -> None:
    assert not azure_monitor.configure_azure_monitor_if_set(Settings())
    assert configured == []


def test_with_a_connection_string_the_app_configures_the_distro(configured) -> None:
    settings = Settings(APPLICATIONINSIGHTS_CONNECTION_STRING=CONNECTION)

    assert azure_monitor.configure_azure_monitor_if_set(settings)
    assert configured == [{"connection_string": CONNECTION}]


def test_entra_id_ingestion_hands_the_distro_the_managed_identity(configured, monkeypatch):
    monkeypatch.setenv(azure_monitor.AUTHENTICATION_STRING, "ClientId=abc;Authorization=AAD")
    settings = Settings(APPLICATIONINSIGHTS_CONNECTION_STRING=CONNECTION, AZURE_CLIENT_ID="abc")

    assert azure_monitor.configure_azure_monitor_if_set(settings)
    assert configured[0]["credential"] is not None


def test_when_the_worker_configures_the_distro_the_app_does_not_again(configured, monkeypatch):
    monkeypatch.setenv(azure_monitor.WORKER_CONFIGURES_DISTRO, "true")
    settings = Settings(APPLICATIONINSIGHTS_CONNECTION_STRING=CONNECTION)

    assert not azure_monitor.configure_azure_monitor_if_set(settings)
    assert configured == []
