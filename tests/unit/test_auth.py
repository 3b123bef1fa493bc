"""Bearer tokens: HS256 locally, claims checked, expiry honoured even for remembered tokens."""

from __future__ import annotations

import time

import jwt
import pytest

from shared.api.auth import Authenticator, AuthNotConfigured, Forbidden, Unauthorized
from shared.settings import DEV_JWT_SECRET, Settings

SECRET = "unit-test-secret-of-a-decent-length-123456"


@pytest.fixture
def authenticator() -> Authenticator:
    return Authenticator(Settings(OUTERPARK_LOCAL_DEV=True, OUTERPARK_JWT_SECRET=SECRET))


def bearer(claims: dict, secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt.encode(claims, secret)}"}


def test_a_valid_token_names_the_customer_and_their_roles(authenticator):
    headers = bearer({"sub": "alice", "roles": ["admin"], "exp": time.time() + 60})
    caller = authenticator.authenticate(headers)
    assert caller.customer_id == "alice"
    assert caller.is_admin


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "alice"},
        {"exp": time.time() + 60},
        {"sub": "", "exp": time.time() + 60},
        {"sub": "alice", "roles": "admin", "exp": time.time() + 60},
        {"sub": "alice", "exp": time.time() - 1},
    ],
    ids=["no-exp", "no-sub", "empty-sub", "roles-not-a-list", "expired"],
)
def test_tokens_with_bad_claims_are_refused(authenticator, claims):
    with pytest.raises(Unauthorized):
        authenticator.authenticate(bearer(claims))


def test_a_remembered_token_is_refused_once_it_expires(authenticator):
    headers = bearer({"sub": "alice", "exp": time.time() + 1})
    assert authenticator.authenticate(headers).customer_id == "alice"
    time.sleep(1.1)
    with pytest.raises(Unauthorized):
        authenticator.authenticate(headers)


def test_a_token_signed_with_another_secret_is_refused(authenticator):
    with pytest.raises(Unauthorized):
        authenticator.authenticate(bearer({"sub": "a", "exp": time.time() + 60}, "x" * 40))


def test_customers_are_not_admins(authenticator):
    with pytest.raises(Forbidden):
        authenticator.require_admin(bearer({"sub": "alice", "exp": time.time() + 60}))


# --------------------------------------------------------------------------- failing closed


def test_an_app_not_run_by_the_local_host_never_accepts_the_development_secret(caplog):
    deployed = Authenticator(Settings())
    forged = bearer({"sub": "mallory", "roles": ["admin"], "exp": time.time() + 60}, DEV_JWT_SECRET)

    with pytest.raises(AuthNotConfigured) as refused:
        deployed.require_admin(forged)

    assert refused.value.status == 503
    assert refused.value.type_suffix == "auth-not-configured"
    assert not deployed.configured
    assert "AUTH_JWKS_URL, AUTH_ISSUER, AUTH_AUDIENCE unset" in caplog.text


def test_an_explicit_jwt_secret_does_not_make_a_deployed_app_accept_local_tokens():
    deployed = Authenticator(Settings(OUTERPARK_JWT_SECRET=SECRET))

    with pytest.raises(AuthNotConfigured):
        deployed.authenticate(bearer({"sub": "alice", "exp": time.time() + 60}))


def test_a_deployment_missing_one_entra_setting_is_refused_and_names_it(caplog):
    settings = Settings(AUTH_JWKS_URL="https://keys.example/jwks", AUTH_AUDIENCE="api-client-id")

    authenticator = Authenticator(settings)

    assert authenticator.missing_settings == ["AUTH_ISSUER"]
    assert "AUTH_ISSUER unset" in caplog.text
    with pytest.raises(AuthNotConfigured) as refused:
        authenticator.authenticate({})
    assert "AUTH_ISSUER" in refused.value.detail


def test_the_local_host_with_no_secret_set_uses_the_development_secret():
    local = Authenticator(Settings(OUTERPARK_LOCAL_DEV=True))
    token = bearer({"sub": "alice", "exp": time.time() + 60}, DEV_JWT_SECRET)

    assert local.authenticate(token).customer_id == "alice"
