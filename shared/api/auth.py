"""Bearer JWT authentication (openapi.yaml, securitySchemes.bearer).

Locally tokens are HS256, signed with OUTERPARK_JWT_SECRET. In Azure, setting AUTH_JWKS_URL
switches to RS256 tokens from Microsoft Entra ID, verified against the tenant's signing keys
(cached by PyJWT's JWKS client) with issuer and audience checked.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import jwt
from pydantic import BaseModel, Field, ValidationError

from shared.api.problems import ApiError
from shared.domain.caller import Caller
from shared.settings import Settings

ADMIN_ROLE = "admin"


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


class Claims(BaseModel):
    sub: str = Field(min_length=1, max_length=128)
    roles: list[str] = Field(default_factory=list)


class Authenticator:
    """Verifies bearer tokens. A verified token is remembered until it expires, so a client
    that sends the same token with every request pays for the signature check once."""

    def __init__(self, settings: Settings, cache_size: int = 10_000) -> None:
        self._verified: dict[str, tuple[Claims, float]] = {}
        self._cache_size = cache_size
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_audience
        if settings.auth_jwks_url:
            self._jwks: jwt.PyJWKClient | None = jwt.PyJWKClient(settings.auth_jwks_url)
            self._algorithms = ["RS256"]
            self._secret: str | None = None
        else:
            self._jwks = None
            self._algorithms = ["HS256"]
            self._secret = settings.jwt_secret.get_secret_value()

    def authenticate(self, headers: Mapping[str, str]) -> Caller:
        """The caller named by the Authorization header; Unauthorized (401) otherwise."""
        header = headers.get("authorization") or headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("a bearer token is required")
        claims = self._verified_claims(token.strip())
        return Caller(customer_id=claims.sub, is_admin=ADMIN_ROLE in claims.roles)

    def require_admin(self, headers: Mapping[str, str]) -> Caller:
        caller = self.authenticate(headers)
        if not caller.is_admin:
            raise Forbidden("this needs the admin role")
        return caller

    def _verified_claims(self, token: str) -> Claims:
        remembered = self._verified.get(token)
        if remembered is not None and remembered[1] > time.time():
            return remembered[0]
        claims, expires_at = self._decode(token)
        if len(self._verified) >= self._cache_size:
            self._verified.clear()
        self._verified[token] = (claims, expires_at)
        return claims

    def _decode(self, token: str) -> tuple[Claims, float]:
        options: dict[str, Any] = {"require": ["exp", "sub"]}
        try:
            key = self._jwks.get_signing_key_from_jwt(token).key if self._jwks else self._secret
            payload = jwt.decode(
                token,
                key=key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                options={**options, "verify_aud": self._audience is not None},
            )
            return Claims.model_validate(payload), float(payload["exp"])
        except (jwt.PyJWTError, ValidationError) as error:
            raise Unauthorized(f"invalid token: {_reason(error)}") from None


def _reason(error: Exception) -> str:
    if isinstance(error, jwt.ExpiredSignatureError):
        return "expired"
    if isinstance(error, ValidationError):
        return "claims sub/roles are malformed"
    return str(error) or type(error).__name__
