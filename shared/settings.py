"""Every app setting the code reads, in one pydantic model.

Names are the app-setting names the Bicep templates set (`infra/`), so that switching from the
embedded backends to Azure is configuration only:

- `CosmosDBConnection__accountEndpoint` set → Cosmos DB; otherwise the embedded SQLite store in
  `OUTERPARK_DATA_DIR`, written through devhost's store service when `OUTERPARK_STORE_SOCKET`
  names one.
- `ServiceBusConnection__fullyQualifiedNamespace` set → Service Bus; otherwise the embedded bus.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "outerpark-local-development-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    # --- storage and messaging backends
    data_dir: Path = Field(Path(".outerpark"), alias="OUTERPARK_DATA_DIR")
    store_socket: Path | None = Field(
        None,
        alias="OUTERPARK_STORE_SOCKET",
        description="The local store service's socket: set by devhost for the hosts it runs.",
    )
    bus_rings: Path | None = Field(
        None,
        alias="OUTERPARK_BUS_RINGS",
        description="The socket on which devhost's Service Bus trigger host hears of messages "
        "that its other processes publish to the embedded bus: set by devhost.",
    )
    store_priority: Literal["high", "low"] = Field(
        "high",
        alias="OUTERPARK_STORE_PRIORITY",
        description="Priority of this process's writes at the store service: devhost's trigger "
        "host writes at low priority, so that requests' writes come first.",
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

    # --- notifications
    notice_sender: Literal["log"] = Field("log", alias="NOTICE_SENDER")

    @property
    def local_jwt_secret(self) -> SecretStr | None:
        """The HS256 key of local tokens: only when the local host runs the app (fail closed:
        a deployed app never falls back to the published development secret)."""
        if not self.local_dev:
            return None
        return self.jwt_secret or SecretStr(DEV_JWT_SECRET)

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
