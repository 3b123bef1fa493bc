"""CosmosDocumentStore details beyond the contract suite, against the Cosmos test endpoint."""

from __future__ import annotations

import pytest

from shared.adapters.cosmos_store import (
    THROTTLE_RETRY_ATTEMPTS,
    THROTTLE_RETRY_MAX_WAIT_SECONDS,
    CosmosDocumentStore,
    cosmos_client,
    store_error,
)
from shared.ports import (
    Condition,
    Conflict,
    NotFound,
    PreconditionFailed,
    Set,
    StoreError,
    TooManyRequests,
)
from shared.settings import Settings
from shared.topology import CONTAINERS, MUSICALS
from tests.cosmos.server import CosmosEndpoint

cosmos = pytest.mark.cosmos
# The test server's certificate is self-signed, and known to be.
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (404, NotFound),
        (409, Conflict),
        (412, PreconditionFailed),
        (429, TooManyRequests),
        (400, ValueError),
        (503, StoreError),
    ],
)
def test_cosmos_status_codes_become_the_ports_errors(status: int, error: type) -> None:
    assert type(store_error(status, "detail")) is error


@cosmos
def test_throttling_is_retried_by_the_sdk_within_the_configured_limits(
    cosmos_server: CosmosEndpoint,
) -> None:
    client = cosmos_client(cosmos_server.url, cosmos_server.key, verify_tls=False)
    retry = client.client_connection.connection_policy.RetryOptions

    assert retry.MaxRetryAttemptCount == THROTTLE_RETRY_ATTEMPTS
    assert retry.MaxWaitTimeInSeconds == THROTTLE_RETRY_MAX_WAIT_SECONDS


@cosmos
def test_one_client_serves_every_store_of_an_endpoint(cosmos_server: CosmosEndpoint) -> None:
    first = cosmos_client(cosmos_server.url, cosmos_server.key, verify_tls=False)

    assert cosmos_client(cosmos_server.url, cosmos_server.key, verify_tls=False) is first


def test_a_store_needs_an_endpoint_in_the_settings() -> None:
    with pytest.raises(ValueError, match="accountEndpoint"):
        CosmosDocumentStore.from_settings(Settings(cosmos_endpoint=None))


@cosmos
def test_every_topology_container_takes_documents_under_its_partition_key(
    cosmos_store: CosmosDocumentStore,
) -> None:
    for spec in CONTAINERS.values():
        probe = f"probe-{spec.name}"

        cosmos_store.create(spec.name, {"id": probe, spec.partition_key.strip("/"): probe})

        assert cosmos_store.read(spec.name, probe, probe)["id"] == probe


@cosmos
def test_patch_conditions_keep_the_case_of_field_names_and_values(
    cosmos_store: CosmosDocumentStore,
) -> None:
    cosmos_store.create(
        MUSICALS.name,
        {"id": "case", "musicalId": "case", "availableSeats": 3, "status": "Reserved"},
    )

    with pytest.raises(PreconditionFailed):
        cosmos_store.patch(
            MUSICALS.name, "case", "case", [Set("x", 1)], [Condition("status", "=", "reserved")]
        )
    patched = cosmos_store.patch(
        MUSICALS.name,
        "case",
        "case",
        [Set("x", 1)],
        [Condition("availableSeats", ">=", 3), Condition("status", "=", "Reserved")],
    )
    assert patched["x"] == 1


@cosmos
def test_a_condition_value_cannot_break_out_of_its_literal(
    cosmos_store: CosmosDocumentStore,
) -> None:
    tricky = 'x" OR true OR "\\'
    cosmos_store.create(
        MUSICALS.name, {"id": "inject", "musicalId": "inject", "title": tricky, "open": False}
    )

    with pytest.raises(PreconditionFailed):
        cosmos_store.patch(
            MUSICALS.name, "inject", "inject", [Set("hit", 1)], [Condition("title", "=", "x")]
        )
    with pytest.raises(PreconditionFailed):
        cosmos_store.patch(
            MUSICALS.name,
            "inject",
            "inject",
            [Set("hit", 1)],
            [Condition("open", "=", True), Condition("title", "=", tricky)],
        )
    patched = cosmos_store.patch(
        MUSICALS.name, "inject", "inject", [Set("hit", 1)], [Condition("title", "=", tricky)]
    )
    assert patched["hit"] == 1
    page = cosmos_store.query(MUSICALS.name, "inject", [Condition("title", "=", tricky)])
    assert [item["id"] for item in page.items] == ["inject"]


@cosmos
def test_a_stored_document_keeps_its_ttl(cosmos_store: CosmosDocumentStore) -> None:
    stored = cosmos_store.create(
        MUSICALS.name, {"id": "evt", "musicalId": "ttl", "type": "event", "ttl": 604_800}
    )

    assert stored["ttl"] == 604_800
    assert cosmos_store.read(MUSICALS.name, "ttl", "evt")["ttl"] == 604_800


@cosmos
def test_a_store_built_from_the_app_settings_reaches_the_database(
    cosmos_server: CosmosEndpoint, cosmos_database: str
) -> None:
    settings = Settings(
        cosmos_endpoint=cosmos_server.url,
        cosmos_key=cosmos_server.key,
        cosmos_database=cosmos_database,
        cosmos_verify_tls=cosmos_server.verify_tls,
    )
    store = CosmosDocumentStore.from_settings(settings)

    store.create(MUSICALS.name, {"id": "from-settings", "musicalId": "s"})

    assert store.read(MUSICALS.name, "s", "from-settings")["id"] == "from-settings"
