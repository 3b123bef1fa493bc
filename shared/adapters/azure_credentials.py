"""The one Microsoft Entra credential a process uses for Cosmos DB and Service Bus.

In Azure the Function App's user-assigned managed identity is chosen by its client id
(`CosmosDBConnection__clientId` or `AZURE_CLIENT_ID`); elsewhere DefaultAzureCredential falls
back to the developer's Azure CLI or environment credentials.
"""

from __future__ import annotations

from functools import lru_cache

from azure.core.credentials import TokenCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity import DefaultAzureCredential
from azure.identity.aio import DefaultAzureCredential as AsyncDefaultAzureCredential


@lru_cache(maxsize=4)
def azure_credential(managed_identity_client_id: str | None) -> TokenCredential:
    """One credential per identity per process, so that its token cache is shared."""
    return DefaultAzureCredential(managed_identity_client_id=managed_identity_client_id)


@lru_cache(maxsize=4)
def async_azure_credential(managed_identity_client_id: str | None) -> AsyncTokenCredential:
    """The same identity for the async SDK clients (`azure.cosmos.aio`)."""
    return AsyncDefaultAzureCredential(managed_identity_client_id=managed_identity_client_id)
