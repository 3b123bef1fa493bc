"""Prod is zone redundant where Microsoft documents how: the Flex Consumption plan's
`zoneRedundant` (with zone-redundant host storage) and each Cosmos DB region's
`isZoneRedundant` (docs/azure-platform.md)."""

from __future__ import annotations

from tests.infra.bicep_tree import INFRA, module, parse_bicep, parse_bicepparam, resource_config


def test_the_flex_plan_takes_its_zone_redundancy_from_the_environment() -> None:
    plan = resource_config(module("functionapp"), "plan")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["zoneRedundant"] == "zoneRedundant"
    params = parse_bicep(INFRA / "main.bicep")["modules"]["functionApp"]["config"]["params"]
    assert params["zoneRedundant"] == "functionZoneRedundant"


def test_prod_is_zone_redundant_and_dev_is_not() -> None:
    _, prod = parse_bicepparam(INFRA / "prod.bicepparam")
    _, dev = parse_bicepparam(INFRA / "dev.bicepparam")
    assert prod["functionZoneRedundant"] is True
    assert prod["cosmosZoneRedundant"] is True
    assert dev.get("functionZoneRedundant", False) is False


def test_the_host_storage_is_zone_redundant_as_a_zone_redundant_plan_needs() -> None:
    assert resource_config(module("storage"), "account")["sku"]["name"] == "Standard_ZRS"
