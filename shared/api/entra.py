"""Microsoft Entra ID v2 access tokens for the OuterPark API (docs/security.md).

The API's app registration asks for v2 tokens (`requestedAccessTokenVersion: 2`, see
infra/scripts/entra-app.sh), so a token's issuer is `https://login.microsoftonline.com/{tid}/v2.0`
and its audience is the API's client id. Beyond the signature (RS256, the tenant's JWKS), issuer,
audience and expiry, a token must:
- come from our tenant (`tid`, read from the configured issuer's path);
- grant something here: a user's (delegated) token carries the API's scope in `scp`; an
  application's token (no `scp`) carries one of the API's app roles in `roles`. Any app in the
  tenant can obtain a token for the API; without these it gets 403.
The customer is the user's object id (`oid`): the same whichever client app the user signs in
with (`sub` is pairwise per client app). `admin` is an app role.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import jwt
from pydantic import BaseModel, Field, ValidationError

from shared.api.auth import ADMIN_ROLE, Forbidden, Unauthorized, token_error_reason
from shared.domain.caller import Caller
from shared.settings import Settings

# The API's app roles (infra/scripts/entra-app.sh): `customer` lets a daemon app act as a
# customer, `admin` manages shows.
APP_ROLES = frozenset({ADMIN_ROLE, "customer"})


class EntraClaims(BaseModel):
    oid: str = Field(min_length=1, max_length=128)
    tid: str = Field(min_length=1)
    scp: str | None = None
    roles: list[str] = Field(default_factory=list)


def tenant_of_issuer(issuer: str) -> str:
    """The tenant id in a v2 issuer (`https://login.microsoftonline.com/{tid}/v2.0`)."""
    segments = [segment for segment in urlsplit(issuer).path.split("/") if segment]
    if len(segments) != 2 or segments[1] != "v2.0":
        raise ValueError(f"AUTH_ISSUER is not a v2 issuer (…/{{tenant}}/v2.0): {issuer}")
    return segments[0]


class EntraTokens:
    def __init__(self, jwks_url: str, issuer: str, audience: str, scope: str) -> None:
        self._keys = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=3600)
        self._issuer = issuer
        self._audience = audience
        self._tenant = tenant_of_issuer(issuer)
        self._scope = scope

    @classmethod
    def from_settings(cls, settings: Settings) -> EntraTokens:
        jwks_url, issuer, audience = (
            settings.auth_jwks_url,
            settings.auth_issuer,
            settings.auth_audience,
        )
        if not (jwks_url and issuer and audience):
            raise ValueError("AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE are all needed")
        return cls(jwks_url, issuer, audience, settings.auth_scope)

    def verify(self, token: str) -> tuple[Caller, float]:
        try:
            key = self._keys.get_signing_key_from_jwt(token).key
            payload: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=["RS256"],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iss", "aud", "oid", "tid"]},
            )
            claims = EntraClaims.model_validate(payload)
        except (jwt.PyJWTError, ValidationError) as error:
            raise Unauthorized(f"invalid token: {token_error_reason(error)}") from None
        if claims.tid != self._tenant:
            raise Unauthorized("invalid token: issued for another tenant")
        if claims.scp is not None:
            if self._scope not in claims.scp.split():
                raise Forbidden(f"the token does not carry the scope {self._scope!r}")
        elif not APP_ROLES.intersection(claims.roles):
            raise Forbidden("an application token needs an app role of this API")
        caller = Caller(customer_id=claims.oid, is_admin=ADMIN_ROLE in claims.roles)
        return caller, float(payload["exp"])
