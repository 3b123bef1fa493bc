"""The one Microsoft Entra credential a process uses for Cosmos DB and Service Bus.

In Azure the Function App runs as its user-assigned managed identity, chosen by client id
(`CosmosDBConnection__clientId` or `AZURE_CLIENT_ID`): ManagedIdentityCredential, and nothing
else, so that a missing role fails loudly instead of falling through to another identity.
App Service and Functions announce the managed identity endpoint in `IDENTITY_ENDPOINT`
(docs/azure-platform.md). Elsewhere (a developer's machine, `func start` against real resources)
DefaultAzureCredential finds the developer's Azure CLI, azd or environment credentials.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from azure.core.credentials import TokenCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.identity.aio import DefaultAzureCredential as AsyncDefaultAzureCredential
from azure.identity.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential

MANAGED_IDENTITY_ENDPOINT = "IDENTITY_ENDPOINT"


def runs_in_azure(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the platform offers this process a managed identity."""
    return bool(environ.get(MANAGED_IDENTITY_ENDPOINT))


@lru_cache(maxsize=4)
def azure_credential(managed_identity_client_id: str | None) -> TokenCredential:
    """One credential per identity per process, so that its token cache is shared."""
    if runs_in_azure():
        return ManagedIdentityCredential(client_id=managed_identity_client_id)
    return DefaultAzureCredential(managed_identity_client_id=managed_identity_client_id)


@lru_cache(maxsize=4)
def async_azure_credential(managed_identity_client_id: str | None) -> AsyncTokenCredential:
    """The same identity for the async SDK clients (`azure.cosmos.aio`)."""
    if runs_in_azure():
        return AsyncManagedIdentityCredential(client_id=managed_identity_client_id)
    return AsyncDefaultAzureCredential(managed_identity_client_id=managed_identity_client_id)
