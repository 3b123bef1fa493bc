"""CosmosDocumentStore details beyond the contract suite, against the Cosmos test endpoint."""

from __future__ import annotations

import asyncio

import pytest
from azure.identity import DefaultAzureCredential

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


@cosmos
def test_awaited_operations_use_the_async_client_and_never_the_blocking_one(
    cosmos_store: CosmosDocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def blocked(*args: object, **kwargs: object) -> None:
        raise AssertionError("an awaited operation went through the blocking client")

    for name in ("read", "create", "replace", "delete", "batch", "query"):
        monkeypatch.setattr(CosmosDocumentStore, name, blocked)

    async def scenario() -> None:
        try:
            created = await cosmos_store.create_async(
                MUSICALS.name, {"id": "aio", "musicalId": "a", "n": 1}
            )
            assert (await cosmos_store.read_async(MUSICALS.name, "a", "aio"))["n"] == 1
            replaced = await cosmos_store.replace_async(
                MUSICALS.name, {"id": "aio", "musicalId": "a", "n": 2}, if_match=created["_etag"]
            )
            page = await cosmos_store.query_async(MUSICALS.name, "a", [Condition("n", "=", 2)])
            assert page.items == [replaced]
            await cosmos_store.delete_async(MUSICALS.name, "a", "aio", if_match=replaced["_etag"])
            assert (await cosmos_store.query_async(MUSICALS.name, "a")).items == []
        finally:
            await cosmos_store.close_async()

    asyncio.run(scenario())


@cosmos
def test_many_items_of_several_partitions_are_read_at_once_in_the_order_asked(
    cosmos_store: CosmosDocumentStore,
) -> None:
    """The contract case with a missing item is an xfail on the test server (its 500)."""
    first = cosmos_store.create(MUSICALS.name, {"id": "m1", "musicalId": "m1"})
    second = cosmos_store.create(MUSICALS.name, {"id": "m2", "musicalId": "m2"})

    async def scenario() -> list[dict[str, object]]:
        try:
            return await cosmos_store.read_many_async(MUSICALS.name, [("m2", "m2"), ("m1", "m1")])
        finally:
            await cosmos_store.close_async()

    assert asyncio.run(scenario()) == [second, first]


def test_a_token_credential_without_its_async_counterpart_is_refused() -> None:
    with pytest.raises(ValueError, match="async_credential"):
        CosmosDocumentStore("https://cosmos.invalid:443/", "db", DefaultAzureCredential())


@cosmos
def test_a_store_built_from_the_app_settings_awaits_through_the_async_client(
    cosmos_server: CosmosEndpoint, cosmos_database: str
) -> None:
    settings = Settings(
        cosmos_endpoint=cosmos_server.url,
        cosmos_key=cosmos_server.key,
        cosmos_database=cosmos_database,
        cosmos_verify_tls=cosmos_server.verify_tls,
    )
    store = CosmosDocumentStore.from_settings(settings)

    async def scenario() -> dict[str, object]:
        try:
            await store.create_async(MUSICALS.name, {"id": "aio-settings", "musicalId": "s"})
            return await store.read_async(MUSICALS.name, "s", "aio-settings")
        finally:
            await store.close_async()

    assert asyncio.run(scenario())["id"] == "aio-settings"
