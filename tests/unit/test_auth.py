"""Bearer tokens: HS256 locally, claims checked, expiry honoured even for remembered tokens."""

from __future__ import annotations

import time

import jwt
import pytest

from shared.api.auth import Authenticator, Forbidden, Unauthorized
from shared.settings import Settings

SECRET = "unit-test-secret-of-a-decent-length-123456"


@pytest.fixture
def authenticator() -> Authenticator:
    return Authenticator(Settings(OUTERPARK_JWT_SECRET=SECRET))


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
