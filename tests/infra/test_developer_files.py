"""What an Azure Python team expects: local.settings.json.template with every setting, azure.yaml
that provisions the same Bicep and deploys the app, a dev container."""

from __future__ import annotations

import json
from typing import Any

import yaml
from pydantic import AliasChoices

from shared.settings import Settings
from tests.infra.bicep_tree import INFRA, REPO, module, parse_bicep, resource_config

# Settings left out of the template, and why (an empty value would not mean "unset").
NOT_IN_TEMPLATE = {
    "COSMOS_KEY": "emulators only (docs/deploy.md); empty would be an empty key",
    "AZURE_CLIENT_ID": "Azure sets the managed identity's client id; locally your login is used",
    "OUTERPARK_LOCAL_BACKENDS": "the embedded backends are devhost's; func start uses Azure's",
    "OUTERPARK_LOCAL_DEV": "set by python -m devhost alone: development tokens, never deployed",
}


def _template() -> dict[str, Any]:
    return json.loads((REPO / "local.settings.json.template").read_text(encoding="utf-8"))


def _names_per_field() -> list[tuple[str, ...]]:
    names = []
    for field in Settings.model_fields.values():
        if isinstance(field.validation_alias, AliasChoices):
            names.append(tuple(str(choice) for choice in field.validation_alias.choices))
        elif field.alias:
            names.append((field.alias,))
    return names


def test_the_template_names_every_setting_of_the_settings_model() -> None:
    values = set(_template()["Values"])
    missing = [
        names for names in _names_per_field() if not set(names) & (values | set(NOT_IN_TEMPLATE))
    ]
    assert not missing


def test_the_template_leaves_out_only_what_it_explains() -> None:
    values = set(_template()["Values"])
    known = {name for names in _names_per_field() for name in names}
    assert set(NOT_IN_TEMPLATE) <= known
    assert not set(NOT_IN_TEMPLATE) & values


def test_the_template_runs_python_functions_and_holds_no_real_secret() -> None:
    values = _template()["Values"]
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["PAYMENT_GATEWAY_SECRET_KEY"].startswith("<")
    assert all(isinstance(value, str) for value in values.values())


def test_the_real_local_settings_file_is_never_committed_or_shipped() -> None:
    assert "local.settings.json" in (REPO / ".gitignore").read_text(encoding="utf-8").split()
    assert "local.settings.json" in (REPO / ".funcignore").read_text(encoding="utf-8").split()


def test_azure_yaml_provisions_the_same_bicep_and_deploys_the_function_app() -> None:
    azure = yaml.safe_load((REPO / "azure.yaml").read_text(encoding="utf-8"))
    assert azure["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    assert (INFRA / "main.bicep").exists()
    (service,) = azure["services"].values()
    assert (service["host"], service["language"], service["project"]) == ("function", "python", ".")
    assert "openapi30.py" in azure["hooks"]["preprovision"]["run"]
    site_tags = resource_config(module("functionapp"), "site")["tags"]["function"]
    assert site_tags["type"] == "union"
    assert site_tags["parameters"]["arg_2"] == {"'azd-service-name'": next(iter(azure["services"]))}


def test_azd_parameters_set_every_required_parameter_of_main() -> None:
    declared = parse_bicep(INFRA / "main.bicep")["parameters"]
    required = {name for name, param in declared.items() if param["default"] is None}
    given = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert required <= set(given), required - set(given)
    assert set(given) <= set(declared)


def test_the_dev_container_brings_python_node_and_the_azure_tools() -> None:
    container = json.loads(
        (REPO / ".devcontainer" / "devcontainer.json").read_text(encoding="utf-8")
    )
    assert "python:1-3.11" in container["image"]
    features = " ".join(container["features"])
    for tool in ("node", "azure-cli", "azd", "azure-functions-core-tools"):
        assert tool in features, tool
    assert 7071 in container["forwardPorts"]
