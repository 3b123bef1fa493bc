"""The deployment scripts, run for real by bash against a stand-in `az` that records its calls."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.infra.bicep_tree import INFRA

SCRIPTS = INFRA / "scripts"

# A stand-in Azure CLI: logs every call (and the gateway key it was given) and answers from
# files the test writes.
FAKE_AZ = r"""#!/usr/bin/env bash
echo "az $* | key=${PAYMENT_GATEWAY_SECRET_KEY-<unset>}" >> "$FAKE/calls"
case "$*" in
  "deployment group create"*) cat "$FAKE/outputs.json" ;;
  "provider show --namespace Microsoft.Web"*) echo "${WEB_STATE:-Registered}" ;;
  "provider show"*) echo Registered ;;
  "provider register"*) exit "${REGISTER_EXIT:-0}" ;;
  "keyvault list-deleted"*) cat "$FAKE/vaults.json" ;;
  "apim deletedservice list"*) cat "$FAKE/apims.json" ;;
  "role assignment list"*) cat "$FAKE/created" ;;
esac
"""


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(FAKE_AZ, encoding="utf-8")
    az.chmod(0o755)
    for name, content in {"vaults.json": "[]", "apims.json": "[]", "calls": ""}.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    return tmp_path


def _run(fake: Path, script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPTS / script), *args],
        env={
            **os.environ,
            "PATH": f"{fake / 'bin'}:{os.environ['PATH']}",
            "FAKE": str(fake),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _id(resource_group: str, resource: str) -> str:
    return f"/subscriptions/s/resourceGroups/{resource_group}/providers/{resource}"


def _calls(fake: Path) -> list[str]:
    return (fake / "calls").read_text(encoding="utf-8").splitlines()


def _outputs(fake: Path) -> None:
    outputs = {
        "functionAppName": {"value": "func-x"},
        "apimGatewayUrl": {"value": "https://apim-x.azure-api.net"},
        "identityPrincipalId": {"value": "p-1"},
        "storageAccountId": {"value": "/subscriptions/s/resourceGroups/rg/providers/x/st"},
    }
    (fake / "outputs.json").write_text(json.dumps(outputs), encoding="utf-8")


def test_an_undefined_secret_variable_never_reaches_the_vault(fake: Path) -> None:
    _outputs(fake)
    done = _run(
        fake,
        "deploy-infra.sh",
        "create",
        "rg",
        "dev.bicepparam",
        PAYMENT_GATEWAY_SECRET_KEY="$(paymentGatewaySecretKey)",
        COSMOS_FAILOVER_LOCATION="$(cosmosFailoverLocation)",
    )
    assert done.returncode == 0, done.stderr
    assert _calls(fake) == [
        "az deployment group create --resource-group rg --name outerpark-infra "
        "--parameters dev.bicepparam --query properties.outputs --output json | key=<unset>"
    ]
    assert (
        "PAYMENT_GATEWAY_SECRET_KEY: the pipeline variable behind it is not defined" in done.stdout
    )


def test_a_defined_secret_is_passed_on_and_the_outputs_become_variables(fake: Path) -> None:
    _outputs(fake)
    done = _run(
        fake,
        "deploy-infra.sh",
        "create",
        "rg",
        "prod.bicepparam",
        "outerpark-7",
        PAYMENT_GATEWAY_SECRET_KEY="live_sk_123",
    )
    assert done.returncode == 0, done.stderr
    assert _calls(fake)[0].endswith("| key=live_sk_123")
    assert "--name outerpark-7" in _calls(fake)[0]
    assert "##vso[task.setvariable variable=functionAppName]func-x" in done.stdout
    assert "##vso[task.setvariable variable=identityPrincipalId]p-1" in done.stdout


def test_what_if_previews_with_the_same_parameters(fake: Path) -> None:
    done = _run(
        fake,
        "deploy-infra.sh",
        "what-if",
        "rg",
        "prod.bicepparam",
        PAYMENT_GATEWAY_SECRET_KEY="$(paymentGatewaySecretKey)",
    )
    assert done.returncode == 0, done.stderr
    assert _calls(fake) == [
        "az deployment group what-if --resource-group rg --parameters prod.bicepparam | key=<unset>"
    ]


def test_preparation_registers_providers_and_frees_soft_deleted_names_of_this_group(
    fake: Path,
) -> None:
    (fake / "vaults.json").write_text(
        json.dumps(
            [
                {
                    "name": "kv-op-dev-abc",
                    "properties": {
                        "vaultId": _id("RG-OP", "Microsoft.KeyVault/vaults/kv-op-dev-abc")
                    },
                },
                {
                    "name": "kv-other",
                    "properties": {"vaultId": _id("other", "Microsoft.KeyVault/vaults/kv-other")},
                },
            ]
        ),
        encoding="utf-8",
    )
    (fake / "apims.json").write_text(
        json.dumps(
            [
                {
                    "name": "apim-op",
                    "location": "West Europe",
                    "serviceId": _id("rg-op", "Microsoft.ApiManagement/service/apim-op"),
                },
                {
                    "name": "apim-else",
                    "location": "westeurope",
                    "serviceId": _id("else", "Microsoft.ApiManagement/service/apim-else"),
                },
            ]
        ),
        encoding="utf-8",
    )
    done = _run(fake, "prepare-resource-group.sh", "rg-op", WEB_STATE="NotRegistered")
    assert done.returncode == 0, done.stderr
    calls = [call.split(" | ")[0] for call in _calls(fake)]
    assert "az provider register --namespace Microsoft.Web --wait" in calls
    assert sum(c.startswith("az provider register") for c in calls) == 1
    assert "az keyvault recover --name kv-op-dev-abc" in calls
    assert "az apim deletedservice purge --service-name apim-op --location West Europe" in calls
    assert not [c for c in calls if "kv-other" in c or "apim-else" in c]


def test_preparation_fails_and_says_who_must_register_an_unregistered_provider(fake: Path) -> None:
    done = _run(
        fake, "prepare-resource-group.sh", "rg", WEB_STATE="NotRegistered", REGISTER_EXIT="1"
    )
    assert done.returncode == 1
    assert (
        "ask a subscription owner to run az provider register --namespace Microsoft.Web"
        in done.stdout
    )
    assert not [c for c in _calls(fake) if "keyvault" in c]


def _assigned(fake: Path, ago: timedelta) -> None:
    created = (datetime.now(UTC) - ago).strftime("%Y-%m-%dT%H:%M:%S.000000+00:00")
    (fake / "created").write_text(created + "\n", encoding="utf-8")


def test_a_role_assigned_moments_ago_is_given_time_to_take_effect(fake: Path) -> None:
    _assigned(fake, timedelta(seconds=0))
    started = time.monotonic()
    done = _run(fake, "wait-for-roles.sh", "p-1", "/st", SETTLE_SECONDS="3")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started >= 2
    assert "waiting" in done.stdout
    assert "--role Storage Blob Data Owner" in _calls(fake)[0]


def test_a_role_assigned_on_an_earlier_run_is_not_waited_for(fake: Path) -> None:
    _assigned(fake, timedelta(days=3))
    started = time.monotonic()
    done = _run(fake, "wait-for-roles.sh", "p-1", "/st", SETTLE_SECONDS="300")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 10
    assert "in effect" in done.stdout


def test_by_default_a_role_is_given_the_ten_minutes_microsoft_documents(fake: Path) -> None:
    # A stand-in `sleep` records how long the script would wait.
    sleep = fake / "bin" / "sleep"
    sleep.write_text('#!/usr/bin/env bash\necho "$1" >> "$FAKE/slept"\n', encoding="utf-8")
    sleep.chmod(0o755)
    _assigned(fake, timedelta(minutes=6))
    done = _run(fake, "wait-for-roles.sh", "p-1", "/st")
    assert done.returncode == 0, done.stderr
    slept = int((fake / "slept").read_text(encoding="utf-8").split()[-1])
    assert 230 <= slept <= 240


def test_a_missing_role_assignment_fails_the_wait(fake: Path) -> None:
    (fake / "created").write_text("", encoding="utf-8")
    done = _run(fake, "wait-for-roles.sh", "p-1", "/st", POLL_SECONDS="0")
    assert done.returncode == 1
    assert "no Storage Blob Data Owner assignment" in done.stdout
