"""Operators are told: alerts, diagnostic settings for each resource, API Management's logger,
the log lines the log alerts match, and a runbook entry per alert."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from shared.breaker import __file__ as breaker_file
from shared.operator_signals import RESERVATION_EXPIRED, RESERVATION_OVERDUE
from tests.infra.bicep_tree import REPO, module, parse_bicep, resource_config, variable

DIAGNOSED = {
    "cosmosDiagnostics": "cosmos",
    "serviceBusDiagnostics": "serviceBus",
    "keyVaultDiagnostics": "vault",
    "apimDiagnostics": "apim",
}


def _operations() -> dict[str, Any]:
    return module("operations")


def _log_alerts() -> dict[str, dict[str, Any]]:
    return {alert["name"]: alert for alert in variable(_operations(), "logAlerts")}


def _query(name: str) -> str:
    """The KQL of a log alert as Azure Monitor receives it (Bicep's \\\\ is one backslash)."""
    return _log_alerts()[name]["query"].replace("\\\\", "\\")


def _dotted(node: Any) -> Any:
    """`operators.id` for pycep's property-accessor node of it; other values as they are."""
    if isinstance(node, dict) and node.get("operator", {}).get("type") == "property_accessor":
        operands = node["operator"]["operands"]
        return f"{_dotted(operands['operand_1'])}.{operands['operand_2']}"
    return node


def _kql_regexes(query: str) -> list[str]:
    return re.findall(r'matches regex @"([^"]+)"', query)


def test_main_deploys_the_operations_module() -> None:
    paths = {
        m["detail"]["path"] for m in parse_bicep(REPO / "infra" / "main.bicep")["modules"].values()
    }
    assert "modules/operations.bicep" in paths


@pytest.mark.parametrize(("setting", "target"), DIAGNOSED.items())
def test_each_resource_sends_its_logs_to_the_workspace(setting: str, target: str) -> None:
    resource = _operations()["resources"][setting]["config"]
    assert resource["scope"] == target
    properties = resource["properties"]
    assert properties["workspaceId"] == "workspaceId"
    assert properties["logs"][0]["enabled"] is True
    assert properties["logs"][0]["categoryGroup"] in {"allLogs", "audit"}


def test_every_alert_pages_the_one_action_group() -> None:
    for name in ("deadLetters", "cosmosThrottled"):
        actions = resource_config(_operations(), name)["properties"]["actions"]
        assert [_dotted(a["actionGroupId"]) for a in actions] == ["operators.id"]
    rules = resource_config(_operations(), "logAlertRules")["properties"]
    assert [_dotted(a) for a in rules["actions"]["actionGroups"]] == ["operators.id"]
    assert rules["scopes"] == ["workspaceId"]


def test_dead_letters_alert_on_more_than_zero_in_any_subscription() -> None:
    criterion = resource_config(_operations(), "deadLetters")["properties"]["criteria"]["allOf"][0]
    assert criterion["metricName"] == "DeadletteredMessages"
    assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", 0)
    assert criterion["dimensions"][0] == {
        "name": "EntityName",
        "operator": "Include",
        "values": ["*"],
    }


def test_cosmos_alerts_on_throttled_requests() -> None:
    criterion = resource_config(_operations(), "cosmosThrottled")["properties"]["criteria"][
        "allOf"
    ][0]
    assert criterion["metricName"] == "TotalRequests"
    assert criterion["dimensions"][0]["values"] == ["429"]


def test_the_log_alerts_are_the_ones_the_runbook_explains() -> None:
    assert set(_log_alerts()) == {
        "http-5xx",
        "breaker-open",
        "reserved-overdue",
        "reservations-expired",
    }
    runbook = (REPO / "docs" / "runbook.md").read_text(encoding="utf-8")
    anchors = {
        "-".join(re.sub(r"[^a-z0-9 -]", "", heading.lower()).split())
        for heading in re.findall(r"^### (.+)$", runbook, re.MULTILINE)
    }
    described = [a["description"] for a in _log_alerts().values()] + [
        resource_config(_operations(), name)["properties"]["description"]
        for name in ("deadLetters", "cosmosThrottled")
    ]
    for description in described:
        anchor = re.search(r"docs/runbook\.md#([a-z0-9-]+)", description)
        assert anchor is not None, description
        assert anchor[1] in anchors, anchor[1]


def test_the_5xx_alert_computes_a_rate_over_app_requests() -> None:
    query = _query("http-5xx")
    assert query.startswith("AppRequests")
    assert "countif(toint(ResultCode) >= 500)" in query


def test_the_breaker_alert_matches_the_breakers_own_log_lines() -> None:
    source = Path(breaker_file).read_text(encoding="utf-8")
    formats = {
        "opened": '"circuit breaker %s opened after %d consecutive failures"',
        "reopened": '"circuit breaker %s reopened: a probe call failed"',
        "closed": '"circuit breaker %s closed: a probe call succeeded"',
    }
    for literal in formats.values():
        assert literal in source, literal
    query = _query("breaker-open")
    opened = "circuit breaker payment-gateway opened after 5 consecutive failures"
    reopened = "circuit breaker payment-gateway reopened: a probe call failed"
    closed = "circuit breaker payment-gateway closed: a probe call succeeded"
    assert 'startswith "circuit breaker "' in query
    for line in (opened, reopened, closed):
        marker = re.search(r" (opened after|reopened:|closed:) ", line)
        assert marker is not None
        assert f'"{marker[0]}"' in query, marker[0]
    breaker_id = re.search(r'extract\(@"([^"]+)"', query)
    assert breaker_id is not None
    assert re.match(breaker_id[1], opened)[1] == "payment-gateway"
    assert "ago(15m)" in query.replace("${breakerOpenMinutes}", "15")


def test_the_reservation_alerts_match_the_operator_signals() -> None:
    (overdue,) = _kql_regexes(_query("reserved-overdue"))
    assert re.match(overdue, RESERVATION_OVERDUE % ("m1-r7", 1200))
    assert not re.match(overdue, RESERVATION_EXPIRED % "m1-r7")
    (expired,) = _kql_regexes(_query("reservations-expired"))
    assert re.match(expired, RESERVATION_EXPIRED % "m1-r7")
    assert not re.match(expired, RESERVATION_OVERDUE % ("m1-r7", 1200))


def test_api_management_logs_to_application_insights_as_its_managed_identity() -> None:
    logger = resource_config(_operations(), "apimLogger")["properties"]
    assert logger["loggerType"] == "applicationInsights"
    assert logger["credentials"]["identityClientId"] == "SystemAssigned"
    assert "instrumentationKey" not in logger["credentials"]
    role = resource_config(_operations(), "apimTelemetryPublisher")["properties"]
    assert "monitoringMetricsPublisher" in str(role["roleDefinitionId"])


def test_the_scale_controller_may_read_each_trigger_subscriptions_counts() -> None:
    rbac = module("rbac")
    assert variable(rbac, "roles")["serviceBusDataOwner"] == "090c5cfd-751d-490a-894a-3ce6f1109419"
    owner = rbac["resources"]["busScaleOwner"]["config"]
    assert owner["loop_type"]["detail"]["array_name"] == "serviceBusTriggerSubscriptions"
    assert owner["config"]["scope"] == {
        "operator": {
            "type": "index_accessor",
            "operands": {"operand_1": "triggerSubscriptions", "operand_2": "i"},
        }
    } or "triggerSubscriptions" in str(owner["config"]["scope"])
