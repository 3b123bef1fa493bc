"""Every template and parameter file parses, and the parameter files fit main.bicep."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.bicep_tree import INFRA, module, parse_bicep, parse_bicepparam

BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
PARAM_FILES = sorted(INFRA.rglob("*.bicepparam"))
MODULE_NAMES = (
    "monitoring",
    "identity",
    "cosmos",
    "servicebus",
    "storage",
    "keyvault",
    "functionapp",
    "apim",
    "rbac",
    "operations",
)


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses(path: Path) -> None:
    tree = parse_bicep(path)
    assert tree.get("resources") or tree.get("modules")


def test_main_composes_one_module_per_concern() -> None:
    modules = parse_bicep(INFRA / "main.bicep")["modules"]
    paths = {entry["detail"]["path"] for entry in modules.values()}
    assert paths == {f"modules/{name}.bicep" for name in MODULE_NAMES}
    for name in MODULE_NAMES:
        assert module(name)


def test_there_is_a_parameter_file_per_environment() -> None:
    assert {p.name for p in PARAM_FILES} == {"dev.bicepparam", "prod.bicepparam"}


@pytest.mark.parametrize("path", PARAM_FILES, ids=lambda p: p.name)
def test_parameter_file_sets_every_required_parameter_and_no_unknown_one(path: Path) -> None:
    template, values = parse_bicepparam(path)
    assert template == INFRA / "main.bicep"
    declared = parse_bicep(template)["parameters"]
    required = {name for name, param in declared.items() if param["default"] is None}
    assert set(values) <= set(declared), set(values) - set(declared)
    assert required <= set(values), required - set(values)


@pytest.mark.parametrize("path", PARAM_FILES, ids=lambda p: p.name)
def test_parameter_file_names_its_own_environment(path: Path) -> None:
    _, values = parse_bicepparam(path)
    assert values["environmentName"] == path.stem
