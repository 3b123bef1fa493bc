"""The ASGI app that serves the HTTP-triggered functions (run by uvicorn).

Per request: match the route, read the body (refusing more than the contract's 64 KiB with 413:
from its Content-Length before reading any of it, else as soon as the streamed body passes it;
deployed, API Management enforces that limit in front of the Function App), build a
`func.HttpRequest`, invoke the function, write its `func.HttpResponse` back, and log one JSON
access line. Answers the host itself gives (404, 405, 413, 500) are problem+json and carry an
X-Correlation-Id: the caller's when it has the contract's shape, or a new one.

A function's `authLevel` is not enforced here: locally there is no API Management to hold a
function key, and every caller is the developer. In Azure the Functions host refuses a
`function`-level route without its key (401).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

import azure.functions as func

from devhost.invocation import Invoker
from devhost.metadata import FunctionSpec
from devhost.problem import PROBLEM_JSON, problem_body
from devhost.routing import MethodNotAllowed, Router
from shared.api.http import MAX_BODY_BYTES, kept_correlation_id

MAX_REQUEST_BODY_BYTES = MAX_BODY_BYTES
CORRELATION_HEADER = "x-correlation-id"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
RawHeaders = list[tuple[bytes, bytes]]

access_log = logging.getLogger("devhost.access")
log = logging.getLogger("devhost.http")


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    """The client disconnected before its request body was complete."""


CLIENT_CLOSED_REQUEST = 499


def http_functions(specs: list[FunctionSpec]) -> list[FunctionSpec]:
    return [spec for spec in specs if spec.trigger_type == "httpTrigger"]


class FunctionsHttpApp:
    def __init__(
        self,
        specs: list[FunctionSpec],
        route_prefix: str,
        invoker: Invoker,
        max_body_bytes: int = MAX_REQUEST_BODY_BYTES,
    ) -> None:
        self._router: Router[FunctionSpec] = Router(
            route_prefix,
            (
                (spec.trigger.get("route") or spec.name, spec.trigger.get("methods"), spec)
                for spec in http_functions(specs)
            ),
        )
        self._invoker = invoker
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        headers = _headers(scope["headers"])
        function_name = None
        try:
            match = self._router.match(method, path)
        except MethodNotAllowed as refused:
            status, response_headers = await self._problem(
                send,
                headers,
                405,
                f"{method} is not allowed on {path}.",
                [(b"allow", ", ".join(refused.allowed).encode())],
            )
        else:
            if match is None:
                status, response_headers = await self._problem(
                    send, headers, 404, f"No function serves {path}."
                )
            else:
                function_name = match.target.name
                status, response_headers = await self._invoke(
                    scope, receive, send, headers, match.target, match.route_params
                )
        access_log.info(
            "%s %s %s",
            method,
            path,
            status,
            extra={
                "method": method,
                "path": path,
                "status": status,
                "durationMs": round((time.perf_counter() - started) * 1000, 3),
                "function": function_name,
                "correlation_id": _header(response_headers, b"x-correlation-id"),
            },
        )

    async def _invoke(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[str, str],
        spec: FunctionSpec,
        route_params: dict[str, str],
    ) -> tuple[int, RawHeaders]:
        try:
            body = await self._read_body(receive, headers)
        except BodyTooLarge:
            return await self._problem(
                send,
                headers,
                413,
                f"The request body is over the host's limit of {self._max_body_bytes} bytes.",
                [(b"connection", b"close")],
            )
        except ClientGone:
            return CLIENT_CLOSED_REQUEST, []
        request = func.HttpRequest(
            scope["method"],
            _url(scope, headers),
            headers=headers,
            params=dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)),
            route_params=route_params,
            body=body,
        )
        try:
            result = await self._invoker.call(spec, request)
            status, response_headers, response_body = _encode(result)
        except Exception:
            # Logged as answered: a correlation id out of shape never reaches the logs.
            correlation_id = kept_correlation_id(headers.get(CORRELATION_HEADER))
            log.exception(
                "function %s failed",
                spec.name,
                extra={"function": spec.name, "correlation_id": correlation_id},
            )
            return await self._problem(
                send, headers, 500, f"Function {spec.name} failed.", correlation_id=correlation_id
            )
        await _send(send, status, response_headers, response_body)
        return status, response_headers

    async def _read_body(self, receive: Receive, headers: dict[str, str]) -> bytes:
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body_bytes:
            raise BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > self._max_body_bytes:
                    raise BodyTooLarge
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    @staticmethod
    async def _problem(
        send: Send,
        headers: dict[str, str],
        status: int,
        detail: str,
        extra_headers: Sequence[tuple[bytes, bytes]] = (),
        correlation_id: str | None = None,
    ) -> tuple[int, RawHeaders]:
        correlation_id = correlation_id or kept_correlation_id(headers.get(CORRELATION_HEADER))
        response_headers = [
            (b"content-type", PROBLEM_JSON),
            (b"x-correlation-id", correlation_id.encode("latin-1")),
            *extra_headers,
        ]
        await _send(send, status, response_headers, problem_body(status, detail))
        return status, response_headers


def _headers(raw: RawHeaders) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1")
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def _header(headers: RawHeaders, name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _url(scope: Scope, headers: dict[str, str]) -> str:
    host = headers.get("host")
    if host is None:
        server_host, server_port = scope.get("server") or ("localhost", 80)
        host = f"{server_host}:{server_port}"
    url = f"{scope.get('scheme', 'http')}://{host}{scope['raw_path'].decode('latin-1')}"
    query = scope["query_string"]
    return f"{url}?{query.decode('latin-1')}" if query else url


def _encode(result: object) -> tuple[int, RawHeaders, bytes]:
    """Status, headers and body of what an HTTP function returned, as the worker encodes it."""
    if isinstance(result, str):
        return 200, [(b"content-type", b"text/plain; charset=utf-8")], result.encode()
    if not isinstance(result, func.HttpResponse):
        raise TypeError(f"an HTTP function must return func.HttpResponse, not {type(result)}")
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in result.headers.items()
    ]
    if not any(name == b"content-type" for name, _ in headers):
        mimetype = result.mimetype
        content_type = (
            f"{mimetype}; charset={result.charset}" if mimetype.startswith("text/") else mimetype
        )
        headers.append((b"content-type", content_type.encode("latin-1")))
    return result.status_code, headers, result.get_body()


async def _send(send: Send, status: int, headers: RawHeaders, body: bytes) -> None:
    headers = [
        *(header for header in headers if header[0] != b"content-length"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
