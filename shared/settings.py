"""Every app setting the code reads, in one pydantic model.

Names are the app-setting names the Bicep templates set (`infra/`), so that switching from the
embedded backends to Azure is configuration only:

- `CosmosDBConnection__accountEndpoint` set → Cosmos DB;
- `ServiceBusConnection__fullyQualifiedNamespace` set → Service Bus;
- otherwise the backends of the module that `OUTERPARK_LOCAL_BACKENDS` names (devhost's embedded
  ones, `devhost.embedded.backends`, which devhost and the tests set); neither → an error.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "outerpark-local-development-secret-change-me"
# Written into the deployment package by infra/scripts/package.py (OUTERPARK_BUILD_ID=...): the
# build id arrives with the code it names, in the same site update (docs/deploy.md).
BUILD_ENV_FILE = Path(__file__).resolve().parents[1] / "build.env"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, env_file=BUILD_ENV_FILE, env_file_encoding="utf-8"
    )

    # --- storage and messaging backends
    local_backends: str | None = Field(
        None,
        alias="OUTERPARK_LOCAL_BACKENDS",
        description="Import path of a module whose document_store() and message_bus() build the "
        "backends that Cosmos DB and Service Bus settings do not name: set by devhost.",
    )
    cosmos_endpoint: str | None = Field(None, alias="CosmosDBConnection__accountEndpoint")
    cosmos_key: SecretStr | None = Field(
        None,
        alias="COSMOS_KEY",
        description="Key auth, for emulators only; Azure uses managed identity.",
    )
    cosmos_database: str = Field("outerpark", alias="COSMOS_DATABASE")
    cosmos_verify_tls: bool = Field(True, alias="COSMOS_VERIFY_TLS")
    servicebus_namespace: str | None = Field(
        None, alias="ServiceBusConnection__fullyQualifiedNamespace"
    )
    managed_identity_client_id: str | None = Field(
        None,
        validation_alias=AliasChoices("CosmosDBConnection__clientId", "AZURE_CLIENT_ID"),
    )

    # --- identity
    local_dev: bool = Field(
        False,
        alias="OUTERPARK_LOCAL_DEV",
        description="Set to 1 by `python -m devhost` for the processes it runs, and by nothing "
        "else: only then may tokens be HS256 (OUTERPARK_JWT_SECRET, or the development secret).",
    )
    jwt_secret: SecretStr | None = Field(None, alias="OUTERPARK_JWT_SECRET")
    auth_jwks_url: str | None = Field(
        None, alias="AUTH_JWKS_URL", description="Entra ID keys; set → RS256 tokens are expected."
    )
    auth_issuer: str | None = Field(None, alias="AUTH_ISSUER")
    auth_audience: str | None = Field(None, alias="AUTH_AUDIENCE")
    auth_scope: str = Field(
        "OuterPark.Use",
        alias="AUTH_SCOPE",
        description="The delegated permission (`scp`) a user's Entra ID token must carry.",
    )

    # --- payment gateway and its circuit breaker
    payment_gateway_url: str | None = Field(None, alias="PAYMENT_GATEWAY_URL")
    payment_gateway_secret_key: SecretStr | None = Field(None, alias="PAYMENT_GATEWAY_SECRET_KEY")
    gateway_timeout_seconds: float = Field(3.0, alias="GATEWAY_TIMEOUT_SECONDS", gt=0)
    breaker_failure_threshold: int = Field(5, alias="BREAKER_FAILURE_THRESHOLD", ge=1)
    breaker_open_seconds: float = Field(10.0, alias="BREAKER_OPEN_SECONDS", gt=0)
    breaker_half_open_probes: int = Field(1, alias="BREAKER_HALF_OPEN_PROBES", ge=1)
    breaker_cache_seconds: float = Field(1.0, alias="BREAKER_CACHE_SECONDS", ge=0)
    payment_retry_base_seconds: float = Field(1.0, alias="PAYMENT_RETRY_BASE_SECONDS", gt=0)
    payment_retry_max_seconds: float = Field(20.0, alias="PAYMENT_RETRY_MAX_SECONDS", gt=0)
    reservations_when_payment_down: Literal["accept", "reject"] = Field(
        "accept", alias="RESERVATIONS_WHEN_PAYMENT_DOWN"
    )

    # --- time: the payment deadline and the saga sweeper's timer (shared/handlers/sweeper.py)
    payment_deadline_seconds: float = Field(
        86_400.0,
        alias="PAYMENT_DEADLINE_SECONDS",
        gt=0,
        description="A reservation whose payment is not approved this long after it was placed "
        "becomes Expired (docs/resilience.md).",
    )
    saga_sweep_schedule: str = Field(
        "*/30 * * * * *",
        alias="SAGA_SWEEP_SCHEDULE",
        description="NCRONTAB schedule of the sweeper (deadlines and repairs): every 30 s, so "
        "an expiry lands within 60 s of its deadline.",
    )
    saga_repair_after_seconds: float = Field(
        180.0,
        alias="SAGA_REPAIR_AFTER_SECONDS",
        gt=0,
        description="A saga step with no progress for this long is driven again by the sweeper "
        "(with the schedule: within 5 minutes, docs/resilience.md).",
    )

    # --- notifications
    notice_sender: Literal["log"] = Field("log", alias="NOTICE_SENDER")

    # --- deployment
    build_id: str = Field(
        "local",
        alias="OUTERPARK_BUILD_ID",
        description="The pipeline build the running code came from, shown by the health "
        "endpoints; deployed, it comes from the package's build.env (an app setting of the "
        "same name would override it).",
    )

    @property
    def local_jwt_secret(self) -> SecretStr | None:
        """The HS256 key of local tokens: only when the local host runs the app (fail closed:
        a deployed app never falls back to the published development secret)."""
        if not self.local_dev:
            return None
        return self.jwt_secret or SecretStr(DEV_JWT_SECRET)

    # --- telemetry
    count_operations: bool = Field(
        False,
        alias="OUTERPARK_COUNT_OPERATIONS",
        description="Tally every store and bus operation (bench.cloud_cost).",
    )
    applicationinsights_connection_string: str | None = Field(
        None,
        alias="APPLICATIONINSIGHTS_CONNECTION_STRING",
        description="Set → the app exports its spans and logs with the Azure Monitor distro.",
    )

    @property
    def uses_cosmos(self) -> bool:
        return self.cosmos_endpoint is not None

    @property
    def uses_service_bus(self) -> bool:
        return self.servicebus_namespace is not None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment (app settings in Azure)."""
    return Settings()
