"""Bearer tokens for local calls: HS256, as `shared.api.auth` verifies them locally."""

from __future__ import annotations

import time
from collections.abc import Sequence

import jwt

from shared.settings import DEV_JWT_SECRET, Settings


def issue_token(
    subject: str,
    roles: Sequence[str] = (),
    ttl_seconds: int = 3600,
    settings: Settings | None = None,
    now: float | None = None,
) -> str:
    settings = settings or Settings()
    issued_at = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "sub": subject,
        "roles": list(roles),
        "iat": issued_at,
        "exp": issued_at + ttl_seconds,
    }
    if settings.auth_issuer:
        claims["iss"] = settings.auth_issuer
    if settings.auth_audience:
        claims["aud"] = settings.auth_audience
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else DEV_JWT_SECRET
    return jwt.encode(claims, secret, algorithm="HS256")
