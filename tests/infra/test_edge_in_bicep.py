"""API Management is the only door, as far as configuration says: the Function App's HTTP
functions need a key that only API Management holds (from Key Vault), basic-auth publishing is
off, and the app and the gateway check the same Entra ID v2 issuer and audience."""

from __future__ import annotations

import re
from typing import Any

from tests.infra.bicep_tree import INFRA, module, parse_bicep, resource_config

Bindings = list[tuple[str, dict[str, Any]]]
# The platform and the deployment probe these without a key (CONTRACT §1, docs/security.md).
ANONYMOUS_HTTP = {"health", "readiness"}
# API Management policies are not well-formed XML (policy expressions hold raw quotes): read
# the elements as text.
POLICY = (INFRA / "policies" / "api.xml").read_text(encoding="utf-8")


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


def test_the_gateway_refuses_bodies_over_64_kib_from_their_declared_length() -> None:
    content = _element("validate-content")

    assert 'max-size="65536"' in content
    assert 'size-exceeded-action="prevent"' in content
    assert POLICY.index("<validate-content") < POLICY.index("<set-backend-service")


def test_the_gateway_keeps_only_correlation_ids_of_the_contracts_shape() -> None:
    inbound = POLICY[POLICY.index("<inbound>") : POLICY.index("</inbound>")]
    header = re.search(r'<set-header name="X-Correlation-Id".*?</set-header>', inbound, re.DOTALL)

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
