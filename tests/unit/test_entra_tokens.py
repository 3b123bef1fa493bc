"""Entra ID v2 access tokens: RS256 tokens signed by a test key whose JWKS is served over a real
local HTTP server, verified as a deployed app verifies them (docs/security.md)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.api.auth import Authenticator, Forbidden, Unauthorized
from shared.settings import Settings

TENANT = "11111111-2222-3333-4444-555555555555"
OTHER_TENANT = "99999999-8888-7777-6666-555555555555"
API_CLIENT_ID = "6e3b8a5c-0d1f-4c4a-9e2b-7a1c2d3e4f50"
V2_ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"
V1_ISSUER = f"https://sts.windows.net/{TENANT}/"
KEY_ID = "test-key-1"
SCOPE = "OuterPark.Use"

SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(SIGNING_KEY.public_key()))
    body = json.dumps({"keys": [{**public, "kid": KEY_ID, "use": "sig", "alg": "RS256"}]})

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/discovery/v2.0/keys"
    server.shutdown()
    server.server_close()


@pytest.fixture
def authenticator(jwks_url: str) -> Authenticator:
    return Authenticator(
        Settings(AUTH_JWKS_URL=jwks_url, AUTH_ISSUER=V2_ISSUER, AUTH_AUDIENCE=API_CLIENT_ID)
    )


def user_token(**changes: object) -> dict[str, object]:
    """The claims of a v2 delegated token for the API, as Entra ID writes them."""
    return {
        "iss": V2_ISSUER,
        "aud": API_CLIENT_ID,
        "tid": TENANT,
        "oid": "user-object-id",
        "sub": "pairwise-subject-of-one-client",
        "scp": f"{SCOPE} openid",
        "exp": time.time() + 300,
        "ver": "2.0",
        **changes,
    }


def app_token(**changes: object) -> dict[str, object]:
    claims = user_token(**{"oid": "service-principal-oid", "roles": ["customer"], **changes})
    claims["idtyp"] = "app"
    del claims["scp"]
    return claims


def bearer(claims: dict[str, object]) -> dict[str, str]:
    token = jwt.encode(
        {k: v for k, v in claims.items() if v is not None},
        SIGNING_KEY,
        algorithm="RS256",
        headers={"kid": KEY_ID},
    )
    return {"Authorization": f"Bearer {token}"}


def test_a_v2_user_token_with_the_apis_scope_names_the_user_by_object_id(authenticator):
    caller = authenticator.authenticate(bearer(user_token()))

    assert caller.customer_id == "user-object-id"
    assert not caller.is_admin


def test_the_admin_app_role_makes_an_admin(authenticator):
    caller = authenticator.require_admin(bearer(user_token(roles=["admin"])))

    assert caller.is_admin


def test_an_application_token_with_an_app_role_of_the_api_is_accepted(authenticator):
    caller = authenticator.authenticate(bearer(app_token()))

    assert caller.customer_id == "service-principal-oid"


@pytest.mark.parametrize(
    ("claims", "refusal"),
    [
        (user_token(iss=V1_ISSUER), Unauthorized),
        (user_token(aud=f"api://{API_CLIENT_ID}"), Unauthorized),
        (user_token(aud="another-apps-client-id"), Unauthorized),
        (user_token(tid=OTHER_TENANT), Unauthorized),
        (user_token(oid=None), Unauthorized),
        (user_token(exp=time.time() - 5), Unauthorized),
        (user_token(scp="User.Read"), Forbidden),
        (app_token(roles=[]), Forbidden),
        (app_token(roles=["Directory.Read.All"]), Forbidden),
    ],
    ids=[
        "v1-issuer",
        "v1-audience",
        "other-audience",
        "other-tenant",
        "no-object-id",
        "expired",
        "missing-scope",
        "app-without-role",
        "app-with-another-apis-role",
    ],
)
def test_tokens_that_are_not_v2_tokens_for_this_api_are_refused(authenticator, claims, refusal):
    with pytest.raises(refusal):
        authenticator.authenticate(bearer(claims))


def test_a_token_signed_with_the_shared_secret_algorithm_is_refused(authenticator):
    forged = jwt.encode(user_token(), "x" * 40, algorithm="HS256", headers={"kid": KEY_ID})

    with pytest.raises(Unauthorized):
        authenticator.authenticate({"Authorization": f"Bearer {forged}"})


def test_a_token_signed_by_an_unknown_key_is_refused(authenticator):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(user_token(), other, algorithm="RS256", headers={"kid": KEY_ID})

    with pytest.raises(Unauthorized):
        authenticator.authenticate({"Authorization": f"Bearer {token}"})
