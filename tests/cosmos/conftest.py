"""Fixtures of the Cosmos adapter's own tests: one server per process, one database per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.adapters.cosmos_store import CosmosDocumentStore
from tests.cosmos.server import (
    CosmosEndpoint,
    cosmos_reachable,
    create_database,
    delete_database,
    shared_endpoint,
)


@pytest.fixture(scope="session")
def cosmos_server() -> CosmosEndpoint:
    """The process's Cosmos endpoint; skips when neither node nor COSMOS_ENDPOINT is there."""
    if not cosmos_reachable():
        pytest.skip("needs node (for @vercel/cosmosdb-server) or COSMOS_ENDPOINT")
    return shared_endpoint()


@pytest.fixture(scope="module")
def cosmos_database(cosmos_server: CosmosEndpoint) -> Iterator[str]:
    """A database holding every container of shared.topology, dropped after the module."""
    name = create_database(cosmos_server)
    yield name
    delete_database(cosmos_server, name)


@pytest.fixture
def cosmos_store(cosmos_server: CosmosEndpoint, cosmos_database: str) -> CosmosDocumentStore:
    return CosmosDocumentStore(
        cosmos_server.url,
        cosmos_database,
        cosmos_server.key,
        verify_tls=cosmos_server.verify_tls,
    )
