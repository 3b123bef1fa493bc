"""Every container, topic and subscription of shared.topology exists in the Bicep, alike."""

from __future__ import annotations

from typing import Any

import pytest

from shared import topology
from shared.adapters.cosmos_sql import composite_index
from shared.handlers.history import NEWEST_FIRST
from shared.handlers.musicals import CATALOG_ORDER
from tests.infra.bicep_tree import module, resource_config, variable


def _by_name(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in entries}


def _subscriptions() -> dict[tuple[str, str], dict[str, Any]]:
    entries = variable(module("servicebus"), "subscriptions")
    return {(entry["topic"], entry["name"]): entry for entry in entries}


def test_cosmos_declares_exactly_the_topology_containers() -> None:
    containers = _by_name(variable(module("cosmos"), "containers"))
    assert set(containers) == set(topology.CONTAINERS)


@pytest.mark.parametrize("spec", topology.CONTAINERS.values(), ids=lambda s: s.name)
def test_container_has_the_topology_partition_key_and_ttl(spec: topology.ContainerSpec) -> None:
    container = _by_name(variable(module("cosmos"), "containers"))[spec.name]
    assert container["partitionKey"] == spec.partition_key
    assert container["defaultTtl"] == spec.default_ttl


def test_cosmos_database_is_the_topology_database() -> None:
    assert variable(module("cosmos"), "databaseName") == topology.DATABASE


def test_cosmos_container_resource_is_built_from_the_declared_list() -> None:
    containers = module("cosmos")["resources"]["sqlContainers"]["config"]
    assert containers["loop_type"]["detail"]["array_name"] == "containers"


def test_cosmos_account_takes_no_keys() -> None:
    account = resource_config(module("cosmos"), "account")["properties"]
    assert account["disableLocalAuth"] is True


@pytest.mark.parametrize(
    ("container", "order_by"),
    [("customercenter", NEWEST_FIRST), ("musicals", CATALOG_ORDER)],
    ids=["history", "catalog"],
)
def test_every_ordered_query_has_its_composite_index(container: str, order_by) -> None:
    """Cosmos DB refuses an ORDER BY on two paths (ours always add the id tie-break) without a
    composite index of exactly those paths and directions."""
    policy = variable(module("cosmos"), "indexingPolicies")[container]
    assert composite_index(order_by) in policy["compositeIndexes"]


def test_service_bus_declares_exactly_the_topology_topics() -> None:
    topics = _by_name(variable(module("servicebus"), "topics"))
    assert set(topics) == set(topology.TOPICS)
    for name, topic in topics.items():
        window = topology.TOPICS[name].duplicate_detection_window_seconds
        assert topic["duplicateDetectionWindowSeconds"] == window


def test_service_bus_declares_exactly_the_topology_subscriptions() -> None:
    expected = {(t.name, s.name) for t in topology.TOPICS.values() for s in t.subscriptions}
    assert set(_subscriptions()) == expected


@pytest.mark.parametrize(
    ("topic", "spec"),
    [(t.name, s) for t in topology.TOPICS.values() for s in t.subscriptions],
    ids=lambda v: v if isinstance(v, str) else v.name,
)
def test_subscription_has_the_topology_delivery_count_lock_and_filter(
    topic: str, spec: topology.SubscriptionSpec
) -> None:
    entry = _subscriptions()[(topic, spec.name)]
    assert entry["maxDeliveryCount"] == spec.max_delivery_count
    assert entry["lockDurationSeconds"] == spec.lock_duration_seconds
    assert tuple(entry["subjects"]) == spec.subjects


def test_subscriptions_dead_letter_expired_messages_and_use_the_declared_lock() -> None:
    body = resource_config(module("servicebus"), "sbSubscriptions")["properties"]
    assert body["deadLetteringOnMessageExpiration"] is True
    assert body["lockDuration"] == "PT${sub.lockDurationSeconds}S"
    assert body["maxDeliveryCount"] == {
        "operator": {
            "type": "property_accessor",
            "operands": {"operand_1": "sub", "operand_2": "maxDeliveryCount"},
        }
    }


def test_topics_detect_duplicates_within_the_declared_window() -> None:
    body = resource_config(module("servicebus"), "sbTopics")["properties"]
    assert body["requiresDuplicateDetection"] is True
    assert (
        body["duplicateDetectionHistoryTimeWindow"] == "PT${topic.duplicateDetectionWindowSeconds}S"
    )


def test_subject_filters_replace_the_default_rule_of_filtered_subscriptions() -> None:
    body = resource_config(module("servicebus"), "subjectFilters")
    assert body["name"].endswith("/$Default")
    assert body["properties"]["filterType"] == "SqlFilter"
    assert "sys.Label IN" in body["properties"]["sqlFilter"]["sqlExpression"]
