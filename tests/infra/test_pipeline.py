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
PREVIEW_STEPS = INFRA / "pipelines" / "preview-steps.yml"


@cache
def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _stages() -> dict[str, dict[str, Any]]:
    return {stage["stage"]: stage for stage in _load(PIPELINE)["stages"]}


def _tasks(steps: list[dict[str, Any]]) -> list[str]:
    return [step["task"] for step in steps if "task" in step]


@pytest.mark.parametrize("path", [PIPELINE, DEPLOY_STEPS, PREVIEW_STEPS], ids=lambda p: p.name)
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


def _step_texts(steps: list[dict[str, Any]]) -> list[str]:
    """Each step's command text: its script, or its task's inline script and arguments."""
    texts = []
    for step in steps:
        inputs = step.get("inputs", {})
        texts.append(
            " ".join(
                str(part)
                for part in (
                    step.get("script"),
                    inputs.get("inlineScript"),
                    inputs.get("arguments"),
                )
                if part
            )
        )
    return texts


def _index_of(steps: list[dict[str, Any]], fragment: str) -> int:
    return next(i for i, text in enumerate(_step_texts(steps)) if fragment in text)


def test_stages_run_test_build_dev_then_preview_and_deploy_prod() -> None:
    stages = _stages()
    assert list(stages) == ["Test", "Build", "DeployDev", "PreviewProd", "DeployProd"]
    assert stages["Build"]["dependsOn"] == "Test"
    assert stages["DeployDev"]["dependsOn"] == "Build"
    assert stages["PreviewProd"]["dependsOn"] == "DeployDev"
    assert stages["DeployProd"]["dependsOn"] == "PreviewProd"


def test_production_deploys_through_the_approved_environment() -> None:
    job = _stages()["DeployProd"]["jobs"][0]
    assert job["environment"] == "outerpark-prod"
    assert "runOnce" in job["strategy"]


def test_the_prod_what_if_runs_in_a_stage_before_the_one_the_approvals_gate() -> None:
    """Environment approvals are checked when the stage that deploys to it starts: a what-if
    inside that stage would run after the approval."""
    preview = _stages()["PreviewProd"]
    assert all("environment" not in job and "deployment" not in job for job in preview["jobs"])
    template = preview["jobs"][0]["steps"][0]
    assert template["template"] == "infra/pipelines/preview-steps.yml"
    assert template["parameters"]["parametersFile"] == "prod.bicepparam"
    assert template["parameters"]["serviceConnection"] == "outerpark-prod"
    steps = _load(PREVIEW_STEPS)["steps"]
    assert "deploy-infra.sh what-if" in _step_texts(steps)[_index_of(steps, "what-if")]
    assert "deploy-infra.sh what-if" not in " ".join(_step_texts(_load(DEPLOY_STEPS)["steps"]))


def test_dev_previews_in_a_job_before_its_deployment_job() -> None:
    jobs = {job.get("job") or job.get("deployment"): job for job in _stages()["DeployDev"]["jobs"]}
    assert jobs["deploy"]["dependsOn"] == "preview"
    assert jobs["preview"]["steps"][0]["template"] == "infra/pipelines/preview-steps.yml"


def test_a_missing_environment_fails_the_run_instead_of_being_created() -> None:
    steps = _load(PREVIEW_STEPS)["steps"]
    check = _index_of(steps, "require_environment.py")
    assert check < _index_of(steps, "what-if")
    assert steps[check]["env"]["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)"
    previews = {
        stage: next(j for j in _stages()[stage]["jobs"] if "job" in j)["steps"][0]["parameters"]
        for stage in ("DeployDev", "PreviewProd")
    }
    assert previews["DeployDev"]["environment"] == "outerpark-dev"
    assert previews["PreviewProd"]["environment"] == "outerpark-prod"
    assert previews["PreviewProd"]["requireChecks"] is True


def test_the_resource_group_is_prepared_before_the_infrastructure_is_created() -> None:
    steps = _load(DEPLOY_STEPS)["steps"]
    assert _index_of(steps, "prepare-resource-group.sh") < _index_of(
        steps, "deploy-infra.sh create"
    )


def test_the_app_is_deployed_after_the_storage_role_is_in_effect_and_retried() -> None:
    steps = _load(DEPLOY_STEPS)["steps"]
    deploy = next(i for i, s in enumerate(steps) if s.get("task") == "AzureFunctionApp@2")
    wait = _index_of(steps, "wait-for-roles.sh")
    assert _index_of(steps, "deploy-infra.sh create") < wait < deploy
    assert steps[deploy]["retryCountOnTaskFailure"] >= 2
    assert "$(identityPrincipalId)" in _step_texts(steps)[wait]
    assert "$(storageAccountId)" in _step_texts(steps)[wait]


def test_every_step_handing_pipeline_variables_to_bicep_unsets_undefined_macros() -> None:
    for path in (DEPLOY_STEPS, PREVIEW_STEPS):
        steps = _load(path)["steps"]
        for step, text in zip(steps, _step_texts(steps), strict=True):
            if "PAYMENT_GATEWAY_SECRET_KEY" in step.get("env", {}):
                assert "scripts/deploy-infra.sh" in text, path.name
    assert 'source "$here/pipeline_env.sh"' in (INFRA / "scripts" / "deploy-infra.sh").read_text()


def test_prod_gets_its_failover_region_and_zone_redundancy() -> None:
    for path in (DEPLOY_STEPS, PREVIEW_STEPS):
        envs = [s["env"] for s in _load(path)["steps"] if "PAYMENT_GATEWAY_URL" in s.get("env", {})]
        assert envs
        assert all(env["COSMOS_FAILOVER_LOCATION"] == "$(cosmosFailoverLocation)" for env in envs)
    prod = (INFRA / "prod.bicepparam").read_text(encoding="utf-8")
    assert "readEnvironmentVariable('COSMOS_FAILOVER_LOCATION')" in prod
    assert "param cosmosZoneRedundant = true" in prod


def test_the_package_carries_the_build_id_the_smoke_test_waits_for() -> None:
    build = _step_texts(_stages()["Build"]["jobs"][0]["steps"])
    assert any("package.py" in text and "--build-id $(Build.BuildId)" in text for text in build)
    smoke = _step_texts(_load(DEPLOY_STEPS)["steps"])[-1]
    assert "smoke.py" in smoke
    assert '--build-id "$(Build.BuildId)"' in smoke
    assert '--gateway "$(apimGatewayUrl)"' in smoke


def test_the_api_management_rendering_is_generated_before_it_is_compiled_or_shipped() -> None:
    test_steps = _stages()["Test"]["jobs"][0]["steps"]
    assert _index_of(test_steps, "openapi30.py") < _index_of(test_steps, "az bicep build")
    build_steps = _stages()["Build"]["jobs"][0]["steps"]
    copy = next(i for i, s in enumerate(build_steps) if s.get("task") == "CopyFiles@2")
    assert _index_of(build_steps, "openapi30.py --output infra/generated/openapi30.json") < copy


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


def test_the_app_is_deployed_as_flex_consumption_then_smoke_tested() -> None:
    steps = _load(DEPLOY_STEPS)["steps"]
    deploy = next(s for s in steps if s.get("task") == "AzureFunctionApp@2")
    assert deploy["inputs"]["isFlexConsumption"] is True
    assert steps.index(deploy) == len(steps) - 2


def test_pipeline_holds_no_secret_value() -> None:
    for path in (PIPELINE, DEPLOY_STEPS, PREVIEW_STEPS):
        text = path.read_text(encoding="utf-8")
        assert "AccountKey=" not in text
        assert "SharedAccessKey" not in text
        assert "paymentGatewaySecretKey: " not in text
