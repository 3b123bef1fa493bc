"""The ASGI app in-process, through httpx's ASGI transport: routing, requests, responses."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import azure.functions as func
import httpx
import pytest

from devhost.app_loader import load_app
from devhost.http_app import FunctionsHttpApp
from devhost.invocation import Invoker
from devhost.metadata import FunctionSpec, functions_of

FIXTURE = Path(__file__).with_name("fixture_app.py")


@pytest.fixture(scope="module")
def specs() -> list[FunctionSpec]:
    return functions_of(load_app(str(FIXTURE)).app)


def _request(
    specs: list[FunctionSpec], method: str, url: str, max_body: int = 1024, **kwargs
) -> httpx.Response:
    async def call() -> httpx.Response:
        invoker = Invoker(asyncio.get_running_loop(), thread_count=2)
        app = FunctionsHttpApp(specs, "api", invoker, max_body_bytes=max_body)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(call())


def test_a_function_gets_the_method_url_query_route_values_headers_and_body(
    specs: list[FunctionSpec],
) -> None:
    response = _request(
        specs,
        "POST",
        "/api/echo/m-7?limit=5&flag=",
        content=b'{"seats": 2}',
        headers={"X-Test": "yes"},
    )

    assert response.status_code == 200
    assert response.json() == {
        "method": "POST",
        "url": "http://testserver/api/echo/m-7?limit=5&flag=",
        "params": {"limit": "5", "flag": ""},
        "routeParams": {"id": "m-7"},
        "testHeader": "yes",
        "body": '{"seats": 2}',
    }
    assert response.headers["content-type"] == "application/json"


def test_the_function_response_status_headers_and_text_mimetype_are_written_back(
    specs: list[FunctionSpec],
) -> None:
    response = _request(specs, "GET", "/api/text")

    assert response.status_code == 202
    assert response.text == "plain"
    assert response.headers["x-extra"] == "1"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == "5"


def test_an_async_function_runs_and_its_constrained_route_value_arrives(
    specs: list[FunctionSpec],
) -> None:
    response = _request(specs, "GET", "/api/items/42")

    assert response.json() == {"n": 42, "async": True}


def test_an_unknown_route_is_a_404_problem_with_a_fresh_correlation_id(
    specs: list[FunctionSpec],
) -> None:
    response = _request(specs, "GET", "/api/nowhere")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["status"], problem["title"]) == (404, "Not Found")
    assert "/api/nowhere" in problem["detail"]
    assert uuid.UUID(response.headers["x-correlation-id"])


def test_a_wrong_method_is_a_405_problem_that_echoes_the_callers_correlation_id(
    specs: list[FunctionSpec],
) -> None:
    response = _request(specs, "DELETE", "/api/echo/1", headers={"X-Correlation-Id": "c-42"})

    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["allow"] == "GET, POST"
    assert response.headers["x-correlation-id"] == "c-42"
    assert response.json()["status"] == 405


def test_an_exception_in_a_function_is_a_logged_500_problem(
    specs: list[FunctionSpec], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="devhost.http"):
        response = _request(specs, "GET", "/api/boom", headers={"X-Correlation-Id": "c-500"})

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-correlation-id"] == "c-500"
    assert response.json()["title"] == "Internal Server Error"
    assert "the fixture fails on purpose" in caplog.text


def test_a_failing_function_logs_the_correlation_id_it_answers_never_one_out_of_shape(
    specs: list[FunctionSpec], caplog: pytest.LogCaptureFixture
) -> None:
    forged = "x\r\nlevel=admin " + "y" * 200
    with caplog.at_level(logging.ERROR, logger="devhost.http"):
        response = _request(specs, "GET", "/api/boom", headers={"X-Correlation-Id": forged})

    answered = response.headers["x-correlation-id"]
    assert uuid.UUID(answered)
    assert [record.correlation_id for record in caplog.records] == [answered]


def test_a_body_over_the_cap_is_refused_413_without_calling_the_function(
    specs: list[FunctionSpec],
) -> None:
    response = _request(specs, "POST", "/api/echo/1", max_body=10, content=b"x" * 11)

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413


def test_a_streamed_body_over_the_cap_is_refused_413(specs: list[FunctionSpec]) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"x" * 8
        yield b"x" * 8

    response = _request(specs, "POST", "/api/echo/1", max_body=10, content=chunks())

    assert response.status_code == 413


def test_a_body_at_the_cap_is_accepted(specs: list[FunctionSpec]) -> None:
    response = _request(specs, "POST", "/api/echo/1", max_body=10, content=b"x" * 10)

    assert response.status_code == 200
    assert response.json()["body"] == "x" * 10


def test_each_request_writes_one_access_line_with_status_duration_and_correlation_id(
    specs: list[FunctionSpec], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="devhost.access"):
        _request(specs, "GET", "/api/echo/1", headers={"X-Correlation-Id": "c-log"})

    (line,) = [r for r in caplog.records if r.name == "devhost.access"]
    assert (line.method, line.path, line.status) == ("GET", "/api/echo/1", 200)
    assert line.correlation_id == "c-log"
    assert line.function == "echo"
    assert isinstance(line.durationMs, float)
    assert json.dumps(line.durationMs)


def test_a_client_gone_before_its_body_ended_is_not_invoked_nor_answered() -> None:
    calls: list[func.HttpRequest] = []
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="upload", methods=["POST"])
    def upload(req: func.HttpRequest) -> func.HttpResponse:
        calls.append(req)
        return func.HttpResponse(status_code=201)

    sent: list[dict[str, object]] = []
    messages = iter(
        [
            {"type": "http.request", "body": b"part", "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, object]:
        return next(messages)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def call() -> None:
        invoker = Invoker(asyncio.get_running_loop(), thread_count=1)
        host = FunctionsHttpApp(functions_of(app), "api", invoker)
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/api/upload",
            "raw_path": b"/api/upload",
            "query_string": b"",
            "headers": [(b"host", b"testserver")],
        }
        await host(scope, receive, send)

    asyncio.run(call())

    assert calls == []
    assert sent == []
