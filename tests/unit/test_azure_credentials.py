"""In Azure the app authenticates as its managed identity only; elsewhere as the developer."""

from __future__ import annotations

import pytest
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

from shared.adapters.azure_credentials import azure_credential, runs_in_azure


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    azure_credential.cache_clear()


def test_in_azure_the_credential_is_the_chosen_managed_identity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://localhost:8081/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "x")
    credential = azure_credential("11111111-2222-3333-4444-555555555555")
    assert isinstance(credential, ManagedIdentityCredential)


def test_on_a_developer_machine_the_credential_is_the_default_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("IDENTITY_ENDPOINT", raising=False)
    assert isinstance(azure_credential(None), DefaultAzureCredential)


def test_only_the_platforms_identity_endpoint_means_azure() -> None:
    assert runs_in_azure({"IDENTITY_ENDPOINT": "http://localhost:8081/msi/token"})
    assert not runs_in_azure({"AZURE_CLIENT_ID": "abc"})
    assert not runs_in_azure({"IDENTITY_ENDPOINT": ""})
