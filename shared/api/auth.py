"""Bearer JWT authentication (openapi.yaml, securitySchemes.bearer), failing closed.

Three modes, chosen once from the settings:
- Entra ID (`AUTH_JWKS_URL`, `AUTH_ISSUER` and `AUTH_AUDIENCE` all set): RS256 v2 access tokens
  from the tenant's keys (`shared.api.entra`).
- Local (`OUTERPARK_LOCAL_DEV=1`, set by `python -m devhost` alone): HS256 tokens signed with
  OUTERPARK_JWT_SECRET or the development secret; the customer is `sub`.
- Neither: not configured. Every authenticated request is refused with 503
  (`/auth-not-configured`) and readiness says not ready; one log line names what is missing.
  There is no built-in secret to fall back to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Protocol

import jwt
from jwt.types import Options
from pydantic import BaseModel, Field, ValidationError

from shared.api.problems import ApiError
from shared.domain.caller import Caller
from shared.settings import Settings

ADMIN_ROLE = "admin"
ENTRA_SETTINGS = ("AUTH_JWKS_URL", "AUTH_ISSUER", "AUTH_AUDIENCE")
AUTH_RETRY_AFTER_SECONDS = "60"

log = logging.getLogger("outerpark.auth")


class Unauthorized(ApiError):
    status = 401
    title = "Unauthorized"
    type_suffix = "unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="outerpark"'})


class Forbidden(ApiError):
    status = 403
    title = "Forbidden"
    type_suffix = "forbidden"


class AuthNotConfigured(ApiError):
    status = 503
    title = "Authentication is not configured"
    type_suffix = "auth-not-configured"

    def __init__(self, missing: list[str]) -> None:
        super().__init__(
            f"this deployment lacks its token settings ({', '.join(missing)}); "
            "no request that needs a token can be served",
            headers={"Retry-After": AUTH_RETRY_AFTER_SECONDS},
        )


class TokenVerifier(Protocol):
    def verify(self, token: str) -> tuple[Caller, float]:
        """The caller a token names and when it expires (epoch seconds). Raises Unauthorized
        (or Forbidden for a genuine token that grants nothing here)."""


class LocalClaims(BaseModel):
    sub: str = Field(min_length=1, max_length=128)
    roles: list[str] = Field(default_factory=list)


class LocalTokens:
    """HS256 tokens of the local host: `sub` is the customer, `roles` may hold admin."""

    def __init__(self, secret: str, issuer: str | None, audience: str | None) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience

    def verify(self, token: str) -> tuple[Caller, float]:
        options: Options = {"require": ["exp", "sub"], "verify_aud": bool(self._audience)}
        try:
            payload = jwt.decode(
                token,
                key=self._secret,
                algorithms=["HS256"],
                audience=self._audience,
                issuer=self._issuer,
                options=options,
            )
            claims = LocalClaims.model_validate(payload)
        except (jwt.PyJWTError, ValidationError) as error:
            raise Unauthorized(f"invalid token: {token_error_reason(error)}") from None
        caller = Caller(customer_id=claims.sub, is_admin=ADMIN_ROLE in claims.roles)
        return caller, float(payload["exp"])


def missing_auth_settings(settings: Settings) -> list[str]:
    """The token settings this app lacks; [] when it can verify tokens."""
    given = {
        "AUTH_JWKS_URL": settings.auth_jwks_url,
        "AUTH_ISSUER": settings.auth_issuer,
        "AUTH_AUDIENCE": settings.auth_audience,
    }
    missing = [name for name in ENTRA_SETTINGS if not given[name]]
    if settings.local_dev and len(missing) == len(ENTRA_SETTINGS):
        return []  # the local host: HS256 tokens
    return missing


def verifier_for(settings: Settings) -> tuple[TokenVerifier | None, list[str]]:
    """The verifier the settings call for, or None and the settings that fall short (said
    once in the log)."""
    missing = missing_auth_settings(settings)
    verifier: TokenVerifier | None = None
    if not missing and settings.auth_jwks_url:
        from shared.api.entra import EntraTokens

        try:
            verifier = EntraTokens.from_settings(settings)
        except ValueError as error:
            log.error("%s", error)
            missing = ["AUTH_ISSUER (a v2 issuer)"]
    elif not missing:
        secret = settings.local_jwt_secret
        assert secret is not None  # local_dev, by missing_auth_settings
        verifier = LocalTokens(
            secret.get_secret_value(), settings.auth_issuer, settings.auth_audience
        )
    if verifier is None:
        log.error(
            "authentication is not configured: %s unset; every request that needs a token "
            "is refused with 503 until they are set",
            ", ".join(missing),
            extra={"missingSettings": missing},
        )
    return verifier, missing


class Authenticator:
    """Verifies bearer tokens. A verified token is remembered until it expires, so a client
    that sends the same token with every request pays for the signature check once."""

    def __init__(self, settings: Settings, cache_size: int = 10_000) -> None:
        self._verified: dict[str, tuple[Caller, float]] = {}
        self._cache_size = cache_size
        self._verifier, self.missing_settings = verifier_for(settings)

    @property
    def configured(self) -> bool:
        return self._verifier is not None

    def authenticate(self, headers: Mapping[str, str]) -> Caller:
        """The caller named by the Authorization header; Unauthorized (401) otherwise, and
        AuthNotConfigured (503) whatever the header when this app cannot check tokens."""
        if self._verifier is None:
            raise AuthNotConfigured(self.missing_settings)
        header = headers.get("authorization") or headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("a bearer token is required")
        return self._verified_caller(token.strip(), self._verifier)

    def require_admin(self, headers: Mapping[str, str]) -> Caller:
        caller = self.authenticate(headers)
        if not caller.is_admin:
            raise Forbidden("this needs the admin role")
        return caller

    def _verified_caller(self, token: str, verifier: TokenVerifier) -> Caller:
        remembered = self._verified.get(token)
        if remembered is not None and remembered[1] > time.time():
            return remembered[0]
        caller, expires_at = verifier.verify(token)
        if len(self._verified) >= self._cache_size:
            self._verified.clear()
        self._verified[token] = (caller, expires_at)
        return caller


def token_error_reason(error: Exception) -> str:
    if isinstance(error, jwt.ExpiredSignatureError):
        return "expired"
    if isinstance(error, ValidationError):
        return "claims are malformed"
    return str(error) or type(error).__name__
