"""API Management is the only door, as far as configuration says: the Function App's HTTP
functions need a key that only API Management holds (from Key Vault), basic-auth publishing is
off, and the app and the gateway check the same Entra ID v2 issuer and audience."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.api.http import PayloadTooLarge
from tests.infra.bicep_tree import INFRA, module, parse_bicep, parse_bicepparam, resource_config

Bindings = list[tuple[str, dict[str, Any]]]
# The platform and the deployment probe these without a key (docs/security.md, "One door").
ANONYMOUS_HTTP = {"health", "readiness"}
# API Management policies are not well-formed XML (policy expressions hold raw quotes): read
# the elements as text.
POLICY = (INFRA / "policies" / "api.xml").read_text(encoding="utf-8")
INBOUND = POLICY[POLICY.index("<inbound>") : POLICY.index("</inbound>")]
BICEPPARAM_FILES = sorted(INFRA.rglob("*.bicepparam"))
AZD_PARAMETERS = INFRA / "main.parameters.json"


def _element(name: str) -> str:
    end = f"</{name}>" if f"</{name}>" in POLICY else "/>"
    found = re.search(rf"<{name}\b.*?{end}", POLICY, re.DOTALL)
    assert found is not None, f"no <{name}> in the policy"
    return found.group(0)


def _http_triggers(bindings: Bindings) -> dict[str, dict[str, Any]]:
    return {name: b for name, b in bindings if b.get("type", "").lower() == "httptrigger"}


def test_every_http_function_but_health_needs_a_function_key(function_bindings: Bindings) -> None:
    triggers = _http_triggers(function_bindings)

    keyed = {name for name, trigger in triggers.items() if trigger["authLevel"] == "FUNCTION"}
    anonymous = {name for name, trigger in triggers.items() if trigger["authLevel"] == "ANONYMOUS"}

    assert anonymous == ANONYMOUS_HTTP
    assert keyed == set(triggers) - ANONYMOUS_HTTP
    assert keyed  # the API itself is behind the key


def test_api_management_sends_the_function_key_from_a_key_vault_backed_secret() -> None:
    apim = module("apim")
    backend = resource_config(apim, "backend")["properties"]
    named_value = resource_config(apim, "functionKey")["properties"]

    header = backend["credentials"]["header"]["'x-functions-key'"]
    assert header == ["{{${functionKeyNamedValue}}}"]
    assert named_value["secret"] is True
    assert named_value["keyVault"]["secretIdentifier"].endswith("secrets/${functionKeySecretName}")
    secret = resource_config(apim, "functionKeySecret")["properties"]["value"]
    assert "listKeys" in str(secret)
    assert "host/default" in str(secret)


def _azd_parameter(name: str) -> str:
    parameters = json.loads(AZD_PARAMETERS.read_text(encoding="utf-8"))["parameters"]
    return parameters[name]["value"]


def test_the_host_key_api_management_sends_is_named_by_a_parameter_for_rotation() -> None:
    # Rotation (docs/security.md) moves the secret to a second host key while the first still
    # works; a secret always read from `default` would undo it at the next deployment.
    secret = resource_config(module("apim"), "functionKeySecret")["properties"]["value"]
    key = secret["operator"]["operands"]["operand_2"]["operator"]
    assert key["type"] == "index_accessor"
    assert key["operands"] == {"operand_1": "functionKeys", "operand_2": "functionKeyName"}

    main = parse_bicep(INFRA / "main.bicep")
    assert main["parameters"]["functionKeyName"]["default"] == "default"
    assert main["modules"]["apim"]["config"]["params"]["functionKeyName"] == "functionKeyName"


def test_every_deployment_path_passes_the_key_name_on() -> None:
    # The name lives in the environment (pipeline variable functionKeyName), so a rotated name
    # stays rotated; unset, it is `default`, the host key every Function App has.
    for path in BICEPPARAM_FILES:
        _, values = parse_bicepparam(path)
        read = values["functionKeyName"]["function"]
        assert read["type"] == "readEnvironmentVariable", path.name
        assert read["parameters"] == {"arg_1": "FUNCTION_KEY_NAME", "arg_2": "default"}, path.name
    assert _azd_parameter("functionKeyName") == "${FUNCTION_KEY_NAME=default}"
    for steps in ("deploy-steps.yml", "preview-steps.yml"):
        loaded = yaml.safe_load((INFRA / "pipelines" / steps).read_text(encoding="utf-8"))
        envs = [s["env"] for s in loaded["steps"] if "AUTH_AUDIENCE" in s.get("env", {})]
        assert envs
        assert all(env["FUNCTION_KEY_NAME"] == "$(functionKeyName)" for env in envs), steps
    assert "FUNCTION_KEY_NAME" in (INFRA / "scripts" / "pipeline_env.sh").read_text()


def test_the_gateway_may_read_the_key_vault_secret_it_sends() -> None:
    apim = module("apim")
    assignment = resource_config(apim, "gatewayReadsSecrets")

    assert assignment["scope"] == "vault"
    principal = str(assignment["properties"]["principalId"])
    assert "'service'" in principal
    assert "'identity'" in principal


def test_basic_auth_publishing_is_off_for_scm_and_ftp() -> None:
    functionapp = module("functionapp")
    policies = {
        resource_config(functionapp, symbol)["name"]: resource_config(functionapp, symbol)
        for symbol, resource in functionapp["resources"].items()
        if "basicPublishingCredentialsPolicies" in resource["type"]
    }

    assert set(policies) == {"scm", "ftp"}
    assert all(policy["properties"]["allow"] is False for policy in policies.values())
    site = resource_config(functionapp, "site")
    assert site["properties"]["siteConfig"]["ftpsState"] == "Disabled"


def test_issuer_and_audience_are_the_same_in_the_app_settings_and_the_gateway_policy() -> None:
    main = parse_bicep(INFRA / "main.bicep")
    app_params = main["modules"]["functionApp"]["config"]["params"]
    apim_params = main["modules"]["apim"]["config"]["params"]
    settings = resource_config(module("functionapp"), "appSettings")["properties"]
    named_values = module("apim")["variables"]["namedValues"]["value"]

    assert app_params["authIssuer"] == apim_params["authIssuer"] == "authIssuer"
    assert app_params["authAudience"] == apim_params["authAudience"] == "authAudience"
    assert settings["AUTH_ISSUER"] == "authIssuer"
    assert settings["AUTH_AUDIENCE"] == "authAudience"
    assert named_values["'outerpark-issuer'"] == "authIssuer"
    assert named_values["'outerpark-audience'"] == "authAudience"
    jwt = _element("validate-jwt")
    assert re.findall(r"<audience>(.*?)</audience>", jwt) == ["{{outerpark-audience}}"]
    assert re.findall(r"<issuer>(.*?)</issuer>", jwt) == ["{{outerpark-issuer}}"]


@pytest.mark.parametrize("path", BICEPPARAM_FILES, ids=lambda p: p.name)
def test_the_audience_comes_from_the_environment_without_a_default(path: Path) -> None:
    # v2 tokens carry the API's client id as `aud`: a default (an `api://` URI above all) would
    # deploy an app and a gateway that refuse every token.
    _, values = parse_bicepparam(path)
    read = values["authAudience"]["function"]
    assert read["type"] == "readEnvironmentVariable"
    assert read["parameters"] == {"arg_1": "AUTH_AUDIENCE"}
    assert "api://" not in path.read_text(encoding="utf-8")


def test_azd_asks_for_the_audience_instead_of_defaulting_it() -> None:
    # `${AUTH_AUDIENCE}` unset: azd prompts, as main.bicep gives authAudience no default.
    assert _azd_parameter("authAudience") == "${AUTH_AUDIENCE}"
    assert parse_bicep(INFRA / "main.bicep")["parameters"]["authAudience"]["default"] is None
    assert "api://" not in AZD_PARAMETERS.read_text(encoding="utf-8")


def test_the_issuer_is_the_v2_issuer_of_the_tenant_and_the_keys_are_its_v2_keys() -> None:
    main = parse_bicep(INFRA / "main.bicep")
    settings = resource_config(module("functionapp"), "appSettings")["properties"]

    issuer = main["variables"]["authIssuer"]["value"]
    assert re.fullmatch(
        r"\$\{environment\(\)\.authentication\.loginEndpoint\}"
        r"\$\{tenant\(\)\.tenantId\}/v2\.0",
        issuer,
    )
    assert settings["AUTH_JWKS_URL"].endswith("/discovery/v2.0/keys")


def _size_check() -> str:
    """The inbound <choose> that judges the declared body length."""
    at = INBOUND.index('"Content-Length"')
    return INBOUND[INBOUND.rindex("<choose>", 0, at) : INBOUND.index("</choose>", at)]


def test_the_gateway_answers_413_problem_json_to_a_declared_body_over_64_kib() -> None:
    # validate-content with size-exceeded-action="prevent" answers 400 in the inbound section
    # (docs/azure-platform.md); the API answers 413 (openapi.yaml, PayloadTooLarge).
    assert "<validate-content" not in POLICY
    check = _size_check()
    condition = re.search(r"<when condition=(.*?)>\s*<return-response>", check, re.DOTALL)
    assert condition is not None
    assert '"Content-Length"' in condition.group(1)
    assert "> 65536" in condition.group(1)

    answer = check[check.index("<return-response>") : check.index("</return-response>")]
    assert '<set-status code="413"' in answer
    assert re.search(
        r'<set-header name="Content-Type".*?<value>application/problem\+json</value>',
        answer,
        re.DOTALL,
    )
    assert re.search(
        r'<set-header name="X-Correlation-Id".*?GetValueOrDefault\("X-Correlation-Id"',
        answer,
        re.DOTALL,
    )
    body = re.search(r"<set-body>(.*?)</set-body>", answer, re.DOTALL)
    assert body is not None
    # The problem the app answers to the same body (shared/api/http.py).
    for member in (
        f'new JProperty("type", "https://outerpark.dev/problems/{PayloadTooLarge.type_suffix}")',
        f'new JProperty("title", "{PayloadTooLarge.title}")',
        f'new JProperty("status", {PayloadTooLarge.status})',
        '"detail"',
    ):
        assert member in body.group(1), member


def test_the_body_size_is_judged_before_the_request_is_forwarded() -> None:
    check_at = INBOUND.index(_size_check())
    assert check_at < INBOUND.index("<validate-jwt")
    assert check_at < INBOUND.index("<set-backend-service")
    # The correlation id the 413 carries is settled before it.
    assert INBOUND.index('<set-header name="X-Correlation-Id"') < check_at


def test_the_gateway_keeps_only_correlation_ids_of_the_contracts_shape() -> None:
    header = re.search(r'<set-header name="X-Correlation-Id".*?</set-header>', INBOUND, re.DOTALL)

    assert header is not None
    assert 'exists-action="override"' in header.group(0)
    assert "^[A-Za-z0-9._:-]{1,128}$" in header.group(0)


def test_the_rate_limit_period_stays_within_what_rate_limit_by_key_accepts() -> None:
    # rate-limit-by-key: renewal-period is at most 300 seconds (docs/azure-platform.md).
    for tree in (module("apim"), parse_bicep(INFRA / "main.bicep")):
        decorators = {
            d["type"]: d["argument"]
            for d in tree["parameters"]["rateLimitPeriodSeconds"]["decorators"]
        }
        assert decorators["max_value"] == 300
        assert decorators["min_value"] == 1
    assert "rate-limit-by-key" in POLICY
    assert 'renewal-period="{{outerpark-rate-limit-period}}"' in POLICY
