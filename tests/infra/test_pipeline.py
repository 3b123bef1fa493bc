"""The pipeline is valid Azure Pipelines YAML and deploys what it built, in order."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.bicep_tree import INFRA, REPO
from tests.infra.tools import app_tool

PIPELINE = REPO / "azure-pipelines.yml"
DEPLOY_STEPS = INFRA / "pipelines" / "deploy-steps.yml"


@cache
def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _stages() -> dict[str, dict[str, Any]]:
    return {stage["stage"]: stage for stage in _load(PIPELINE)["stages"]}


def _tasks(steps: list[dict[str, Any]]) -> list[str]:
    return [step["task"] for step in steps if "task" in step]


@pytest.mark.parametrize("path", [PIPELINE, DEPLOY_STEPS], ids=lambda p: p.name)
def test_pipeline_file_matches_the_azure_pipelines_schema(path: Path) -> None:
    completed = subprocess.run(
        [
            str(app_tool("check-jsonschema")),
            "--regex-variant",
            "python",
            "--builtin-schema",
            "vendor.azure-pipelines",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_stages_run_test_build_dev_then_prod() -> None:
    stages = _stages()
    assert list(stages) == ["Test", "Build", "DeployDev", "DeployProd"]
    assert stages["Build"]["dependsOn"] == "Test"
    assert stages["DeployDev"]["dependsOn"] == "Build"
    assert stages["DeployProd"]["dependsOn"] == "DeployDev"


def test_production_deploys_through_the_approved_environment() -> None:
    job = _stages()["DeployProd"]["jobs"][0]
    assert job["environment"] == "outerpark-prod"
    assert "runOnce" in job["strategy"]


def test_deploy_steps_download_what_they_deploy_before_using_it() -> None:
    steps = _load(DEPLOY_STEPS)["steps"]
    downloads = [step["artifact"] for step in steps if "download" in step]
    assert set(downloads) == {"deploy", "app"}
    first_task = next(i for i, step in enumerate(steps) if "task" in step)
    assert all(i < first_task for i, step in enumerate(steps) if "download" in step)


def test_build_publishes_the_artifacts_the_deployments_download() -> None:
    build_steps = _stages()["Build"]["jobs"][0]["steps"]
    published = {step["artifact"] for step in build_steps if "publish" in step}
    assert published == {"deploy", "app"}


def test_infrastructure_is_previewed_with_what_if_before_it_is_created() -> None:
    scripts = [
        step["inputs"]["inlineScript"]
        for step in _load(DEPLOY_STEPS)["steps"]
        if step.get("task") == "AzureCLI@2"
    ]
    assert "az deployment group what-if" in scripts[0]
    assert "az deployment group create" in scripts[1]


def test_app_is_deployed_as_flex_consumption_then_probed_through_the_gateway() -> None:
    steps = _load(DEPLOY_STEPS)["steps"]
    deploy = next(s for s in steps if s.get("task") == "AzureFunctionApp@2")
    assert deploy["inputs"]["isFlexConsumption"] is True
    smoke = steps[-1]["script"]
    assert "$(apimGatewayUrl)/api/health/ready" in smoke
    assert steps.index(deploy) < len(steps) - 1


def test_pipeline_holds_no_secret_value() -> None:
    for path in (PIPELINE, DEPLOY_STEPS):
        text = path.read_text(encoding="utf-8")
        assert "AccountKey=" not in text
        assert "SharedAccessKey" not in text
        assert "paymentGatewaySecretKey: " not in text
