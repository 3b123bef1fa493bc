"""Every connection, topic, subscription, database and container the functions bind to exists in
the Bicep."""

from __future__ import annotations

from typing import Any

from tests.infra.bicep_tree import module, resource_config, variable

Bindings = list[tuple[str, dict[str, Any]]]

# The app setting an identity-based connection of each binding type is found by.
CONNECTION_SUFFIX = {
    "cosmosdbtrigger": "__accountEndpoint",
    "cosmosdb": "__accountEndpoint",
    "servicebustrigger": "__fullyQualifiedNamespace",
    "servicebus": "__fullyQualifiedNamespace",
}


def _containers() -> set[str]:
    return {entry["name"] for entry in variable(module("cosmos"), "containers")}


def _bound(bindings: Bindings, key: str) -> list[tuple[str, dict[str, Any]]]:
    return [(name, b) for name, b in bindings if key in b]


def test_every_binding_connection_has_its_identity_based_setting(
    function_bindings: Bindings,
) -> None:
    settings = resource_config(module("functionapp"), "appSettings")["properties"]
    connected = _bound(function_bindings, "connection")
    assert connected
    for name, binding in connected:
        suffix = CONNECTION_SUFFIX[binding["type"].lower()]
        assert f"{binding['connection']}{suffix}" in settings, name


def test_every_bound_topic_and_subscription_exists(function_bindings: Bindings) -> None:
    topics = {entry["name"] for entry in variable(module("servicebus"), "topics")}
    subscriptions = {
        (entry["topic"], entry["name"]) for entry in variable(module("servicebus"), "subscriptions")
    }
    for name, binding in _bound(function_bindings, "topicName"):
        assert binding["topicName"] in topics, name
        if "subscriptionName" in binding:
            assert (binding["topicName"], binding["subscriptionName"]) in subscriptions, name


def test_every_bound_database_and_container_exists(function_bindings: Bindings) -> None:
    database = variable(module("cosmos"), "databaseName")
    for name, binding in _bound(function_bindings, "databaseName"):
        assert binding["databaseName"] == database, name
        assert binding["containerName"] in _containers(), name


def test_every_lease_container_exists_and_is_never_created_by_the_app(
    function_bindings: Bindings,
) -> None:
    for name, binding in _bound(function_bindings, "leaseContainerName"):
        assert binding["leaseContainerName"] in _containers(), name
        assert not binding.get("createLeaseContainerIfNotExists", False), name


def test_change_feed_consumers_of_one_container_have_distinct_lease_prefixes(
    function_bindings: Bindings,
) -> None:
    seen: set[tuple[str, str, str]] = set()
    for name, binding in _bound(function_bindings, "leaseContainerName"):
        key = (
            binding["containerName"],
            binding["leaseContainerName"],
            binding.get("leaseContainerPrefix", ""),
        )
        assert key not in seen, name
        seen.add(key)
