"""Every app setting the code reads is set in the Function App module, identity-based."""

from __future__ import annotations

from pydantic import AliasChoices

from shared.settings import Settings
from tests.infra.bicep_tree import module, resource_config

# Settings that exist for local runs only, and why Azure does not set them.
LOCAL_ONLY = {
    "OUTERPARK_LOCAL_BACKENDS": "devhost's embedded store and bus; Azure uses Cosmos DB and "
    "Service Bus",
    "OUTERPARK_JWT_SECRET": "HS256 development tokens; Azure checks Entra ID tokens (AUTH_*)",
    "OUTERPARK_LOCAL_DEV": "said by devhost alone; a deployed app never accepts local tokens",
    "COSMOS_KEY": "key auth for emulators; the account has local auth off",
    "COSMOS_VERIFY_TLS": "for emulators with self-signed certificates",
    "OUTERPARK_COUNT_OPERATIONS": "operation tallies for bench.cloud_cost, run locally",
}
# Settings the deployment package carries instead of the site's app settings, and why.
FROM_PACKAGE = {
    "OUTERPARK_BUILD_ID": "build.env in the package: the id changes with the code, in one update",
}


def _app_settings() -> dict[str, object]:
    return resource_config(module("functionapp"), "appSettings")["properties"]


def _alias_choices() -> list[tuple[str, ...]]:
    """Per field, the names it may be read from."""
    choices = []
    for field in Settings.model_fields.values():
        if isinstance(field.validation_alias, AliasChoices):
            choices.append(tuple(str(c) for c in field.validation_alias.choices))
        elif field.alias:
            choices.append((field.alias,))
    return choices


def test_every_setting_alias_is_set_in_azure_unless_local_only() -> None:
    settings = _app_settings()
    missing = [
        names
        for names in _alias_choices()
        if not set(names) & (set(LOCAL_ONLY) | set(FROM_PACKAGE)) and not set(names) & set(settings)
    ]
    assert not missing


def test_local_only_settings_are_real_settings_and_not_set_in_azure() -> None:
    known = {name for names in _alias_choices() for name in names}
    assert set(LOCAL_ONLY) <= known
    assert not set(LOCAL_ONLY) & set(_app_settings())


def test_settings_the_package_carries_are_not_app_settings() -> None:
    """An app setting would be a second site update, and would name the build before its code
    is there (docs/deploy.md)."""
    known = {name for names in _alias_choices() for name in names}
    assert set(FROM_PACKAGE) <= known
    assert not set(FROM_PACKAGE) & set(_app_settings())


def test_connections_use_the_managed_identity() -> None:
    settings = _app_settings()
    for connection in ("CosmosDBConnection", "ServiceBusConnection", "AzureWebJobsStorage"):
        assert settings[f"{connection}__credential"] == "managedidentity"
        assert settings[f"{connection}__clientId"] == "identityClientId"


def test_no_setting_carries_a_key_or_connection_string() -> None:
    suspicious = ("AccountKey=", "SharedAccessKey", "DefaultEndpointsProtocol")
    for name, value in _app_settings().items():
        assert not any(marker in str(value) for marker in suspicious), name


def test_gateway_secret_comes_from_key_vault() -> None:
    value = _app_settings()["PAYMENT_GATEWAY_SECRET_KEY"]
    assert str(value).startswith("@Microsoft.KeyVault(")
