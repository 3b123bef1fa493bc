"""An app not run by the local host and without its token settings (docs/security.md): every
authenticated function answers 503 auth-not-configured, whatever token it is shown (the
development secret's included), and readiness answers 503. Called as the Functions worker calls
them, over the real embedded store."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Callable

import azure.functions as func
import jwt
import pytest

from shared import bootstrap
from shared.settings import DEV_JWT_SECRET, Settings


@pytest.fixture
def deployed_without_token_settings(store, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    services = bootstrap.Services(Settings(data_dir=tmp_path / "data"))
    services.__dict__["store"] = store
    monkeypatch.setattr(bootstrap, "_services", services)


FORGED_ADMIN = jwt.encode(
    {"sub": "mallory", "roles": ["admin"], "exp": time.time() + 3600}, DEV_JWT_SECRET
)


def request(method: str, route_params: dict[str, str] | None = None, body: bytes = b"{}"):
    return func.HttpRequest(
        method,
        "http://localhost/api/x",
        headers={"Authorization": f"Bearer {FORGED_ADMIN}"},
        route_params=route_params or {},
        body=body,
    )


def call(function: Callable, req: func.HttpRequest) -> func.HttpResponse:
    result = function(req)
    return asyncio.run(result) if inspect.iscoroutine(result) else result


def authenticated_functions():
    from functions.history import show_history
    from functions.musicals import create_musical
    from functions.reservations import (
        cancel_reservation_request,
        create_reservation,
        show_reservation,
    )

    body = json.dumps({"title": "T", "seats": 1, "price": 1}).encode()
    return {
        "POST /musicals": (create_musical, request("POST", body=body)),
        "POST /reservations": (
            create_reservation,
            request("POST", body=b'{"musicalId": "m", "seats": 1}'),
        ),
        "GET /reservations/{id}": (show_reservation, request("GET", {"id": "r"})),
        "POST /reservations/{id}/cancel": (
            cancel_reservation_request,
            request("POST", {"id": "r"}),
        ),
        "GET /history": (show_history, request("GET")),
    }


@pytest.mark.parametrize(
    "operation",
    [
        "POST /musicals",
        "POST /reservations",
        "GET /reservations/{id}",
        "POST /reservations/{id}/cancel",
        "GET /history",
    ],
)
def test_every_authenticated_request_is_refused_with_503_auth_not_configured(
    deployed_without_token_settings, operation
):
    function, req = authenticated_functions()[operation]

    response = call(function, req)

    assert response.status_code == 503
    problem = json.loads(response.get_body())
    assert problem["type"].endswith("/auth-not-configured")
    assert "AUTH_JWKS_URL" in problem["detail"]
    assert response.mimetype == "application/problem+json"


def test_readiness_is_503_and_shows_the_auth_check_failing(deployed_without_token_settings):
    from functions.readiness import readiness

    response = call(
        readiness, func.HttpRequest("GET", "http://localhost/api/health/ready", body=b"")
    )

    body = json.loads(response.get_body())
    assert response.status_code == 503
    assert body["status"] == "not-ready"
    assert body["checks"]["auth"] == {"status": "failing", "durationMs": 0.0}


def test_anonymous_reads_still_work(deployed_without_token_settings):
    from functions.musicals import browse_musicals

    response = call(
        browse_musicals, func.HttpRequest("GET", "http://localhost/api/musicals", body=b"")
    )

    assert response.status_code == 200
