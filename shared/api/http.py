"""The shape every HTTP function shares: correlation id in and out, JSON bodies read with the
contract's guards, domain errors as RFC 9457 problem details.

A function body stays a few lines:

    @bp.route(route="musicals", methods=["POST"])
    @endpoint
    def create_musical(request: ApiRequest) -> func.HttpResponse:
        ...
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import azure.functions as func
from opentelemetry.trace import Span
from pydantic import BaseModel, ValidationError

from shared.api.problems import ApiError, problem_for
from shared.observability import answered, correlation, execution, request_step

MAX_BODY_BYTES = 64 * 1024
MAX_IDEMPOTENCY_KEY = 200
CORRELATION_HEADER = "X-Correlation-Id"
# openapi.yaml (X-Correlation-Id): the caller's id is kept only in this shape; it reaches logs,
# events and Service Bus properties, so nothing else (newlines, quotes, kilobytes) may ride along.
CORRELATION_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")

log = logging.getLogger("outerpark.http")
# Built once: json.dumps with options builds an encoder on every call.
_ENCODE_JSON = json.JSONEncoder(separators=(",", ":")).encode
ModelT = TypeVar("ModelT", bound=BaseModel)


class MalformedJson(ApiError):
    status = 400
    title = "Malformed JSON"
    type_suffix = "malformed-json"


class PayloadTooLarge(ApiError):
    status = 413
    title = "Payload Too Large"
    type_suffix = "payload-too-large"


class InvalidRequest(ApiError):
    status = 422
    title = "Invalid request"
    type_suffix = "invalid-request"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


@dataclass(frozen=True)
class ApiRequest:
    raw: func.HttpRequest
    correlation_id: str

    def route(self, name: str) -> str:
        route_params: Mapping[str, str] = self.raw.route_params
        return route_params[name]

    def body(self, model: type[ModelT]) -> ModelT:
        """The JSON body validated into `model`: 413 when too big, 400 when not JSON, 422 when
        it does not fit (strict types, bounds, no unknown fields). The declared length is
        judged before the body is touched."""
        if declared_length(self.raw) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the body exceeds {MAX_BODY_BYTES} bytes")
        raw = self.raw.get_body() or b""
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the body exceeds {MAX_BODY_BYTES} bytes")
        try:
            return model.model_validate_json(raw)
        except ValidationError as error:
            if any(e["type"] == "json_invalid" for e in error.errors()):
                reason = error.errors(include_url=False)[0]["msg"]
                raise MalformedJson(f"the body is not valid JSON: {reason}") from None
            errors = [
                {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in error.errors(include_url=False)
            ]
            detail = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors)
            raise InvalidRequest(detail, errors) from None

    def idempotency_key(self) -> str | None:
        """The Idempotency-Key header: 1 to 200 characters when present (else 422)."""
        key = header(self.raw, "Idempotency-Key")
        if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
            raise InvalidRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
        return key

    def page_params(self) -> tuple[int, str | None]:
        """`limit` (1..100, default 50) and `continuationToken` of a list request."""
        raw_limit = self.raw.params.get("limit")
        limit = 50
        if raw_limit is not None:
            if not raw_limit.isdecimal() or not 1 <= int(raw_limit) <= 100:
                raise InvalidRequest("limit must be an integer from 1 to 100")
            limit = int(raw_limit)
        token = self.raw.params.get("continuationToken")
        if token is not None and not token:
            raise InvalidRequest("continuationToken, when given, is the previous page's token")
        return limit, token


def json_response(
    body: BaseModel | Any,
    request: ApiRequest,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> func.HttpResponse:
    """`body` as JSON: a model in its camelCase form, written by pydantic's own serializer
    (cheaper than a dict encoded after), anything else as it is."""
    return func.HttpResponse(
        body.model_dump_json(by_alias=True) if isinstance(body, BaseModel) else _ENCODE_JSON(body),
        status_code=status,
        mimetype="application/json",
        headers={CORRELATION_HEADER: request.correlation_id, **(headers or {})},
    )


def json_text_response(text: str, request: ApiRequest) -> func.HttpResponse:
    """200 with `text`, a JSON answer already written (e.g. joined from stored JSON)."""
    return func.HttpResponse(
        text,
        status_code=200,
        mimetype="application/json",
        headers={CORRELATION_HEADER: request.correlation_id},
    )


def problem_response(
    status: int,
    title: str,
    detail: str,
    correlation_id: str,
    type_suffix: str = "about:blank",
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> func.HttpResponse:
    problem = {
        "type": f"https://outerpark.dev/problems/{type_suffix}"
        if type_suffix != "about:blank"
        else type_suffix,
        "title": title,
        "status": status,
        "detail": detail,
        "correlationId": correlation_id,
        **(extra or {}),
    }
    return func.HttpResponse(
        json.dumps(problem),
        status_code=status,
        mimetype="application/problem+json",
        headers={CORRELATION_HEADER: correlation_id, **(headers or {})},
    )


def header(request: func.HttpRequest, name: str) -> str | None:
    """A request header (any case), or None. `headers.get` would raise and catch a KeyError
    inside for every absent header, on every request."""
    headers = request.headers
    return headers[name] if name in headers else None  # noqa: SIM401 - see above


def declared_length(request: func.HttpRequest) -> int:
    """The request's Content-Length, or 0 when absent or not a number."""
    value = header(request, "Content-Length")
    return int(value) if value is not None and value.strip().isdecimal() else 0


def kept_correlation_id(sent: str | None) -> str:
    """The caller's X-Correlation-Id when it has the contract's shape (openapi.yaml), otherwise
    a new one that the server made."""
    if sent is not None and CORRELATION_ID_PATTERN.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


def correlation_id_of(request: func.HttpRequest) -> str:
    return kept_correlation_id(header(request, CORRELATION_HEADER))


def endpoint(handler: Callable[[ApiRequest], Any]) -> Callable[[func.HttpRequest], Any]:
    """Wrap an HTTP function (sync or async): correlation, a span, error mapping, and no
    exception ever escapes."""
    name = handler.__name__

    def _span(request: ApiRequest) -> contextlib.AbstractContextManager[Span]:
        raw = request.raw
        return request_step(name, raw.method, _path(raw.url), raw.headers, request.correlation_id)

    if inspect.iscoroutinefunction(handler):

        async def run_async(req: func.HttpRequest) -> func.HttpResponse:
            request = ApiRequest(raw=req, correlation_id=correlation_id_of(req))
            with correlation(request.correlation_id), execution(name), _span(request) as span:
                try:
                    response: func.HttpResponse = await handler(request)
                except Exception as error:
                    response = _error_response(error, request, name)
                answered(span, response.status_code)
                return response

        return _as_function(run_async, handler)

    def run(req: func.HttpRequest) -> func.HttpResponse:
        request = ApiRequest(raw=req, correlation_id=correlation_id_of(req))
        with correlation(request.correlation_id), execution(name), _span(request) as span:
            try:
                response: func.HttpResponse = handler(request)
            except Exception as error:
                response = _error_response(error, request, name)
            answered(span, response.status_code)
            return response

    return _as_function(run, handler)


def _path(url: str) -> str:
    return urlsplit(url).path


def _error_response(error: Exception, request: ApiRequest, name: str) -> func.HttpResponse:
    """A domain error as its problem+json answer; anything else as a logged 500."""
    problem = problem_for(error)
    if problem is not None:
        extra = {"errors": error.errors} if isinstance(error, InvalidRequest) else problem.extra
        return problem_response(
            problem.type.status,
            problem.type.title,
            problem.detail,
            request.correlation_id,
            problem.type.type_suffix,
            problem.headers,
            extra,
        )
    log.exception("unhandled error in %s", name, exc_info=error)
    return problem_response(
        500,
        "Internal Server Error",
        "something went wrong on our side; the request may be retried",
        request.correlation_id,
    )


def _as_function(
    run: Callable[[func.HttpRequest], Any], handler: Callable[[ApiRequest], Any]
) -> Callable[[func.HttpRequest], Any]:
    # Copy the name and docstring but not `__wrapped__`: the Functions worker reads the
    # signature to bind the trigger, and it must see `req`, not the handler's parameter.
    wrapper = functools.update_wrapper(run, handler, assigned=("__module__", "__name__", "__doc__"))
    del wrapper.__wrapped__
    return run
