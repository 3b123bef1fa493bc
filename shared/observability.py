"""Correlation ids, structured (JSON) logs and traces.

One correlation id per reservation travels HTTP → documents → events → messages → logs. The
current one lives in a context variable; a logging filter stamps it on every record, so a
reservation's whole story can be grepped out of the logs.

One OpenTelemetry trace follows it across the hops: every function execution is a span that
continues the trace context it was handed (the request's `traceparent` header, a message's
application properties, a changed document's `traceContext`), with the correlation id and the
reservation id as attributes. Only the OpenTelemetry API is used here: without an SDK (none is
configured unless Application Insights is, or devhost records spans) every span is a no-op.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)


@contextlib.contextmanager
def correlation(correlation_id: str | None) -> Iterator[None]:
    token = _correlation_id.set(correlation_id)
    try:
        yield
    finally:
        _correlation_id.reset(token)


class CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "correlation_id"):
            record.correlation_id = _correlation_id.get()
        return True


_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, correlationId, and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlationId": getattr(record, "correlation_id", None),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and key != "correlation_id":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_json_logging(level: int = logging.INFO) -> None:
    """For processes we own (the local host); in Azure the Functions host owns logging."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(CorrelationFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


# --------------------------------------------------------------------------- traces

TRACE_CONTEXT_FIELD = "traceContext"
"""Where an outbox event (or a notice) keeps the W3C trace context it was written in."""
TRACE_HEADERS = ("traceparent", "tracestate")
CORRELATION_ATTRIBUTE = "outerpark.correlation_id"
RESERVATION_ATTRIBUTE = "outerpark.reservation_id"
OUTCOME_ATTRIBUTE = "outerpark.outcome"

_PROPAGATOR = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("outerpark")  # follows a provider configured later
FunctionT = TypeVar("FunctionT", bound=Callable[..., Any])
ExecutionListener = Callable[[str, float], None]
_execution_listeners: list[ExecutionListener] = []


def trace_context() -> dict[str, str]:
    """The current span's W3C trace context (`traceparent`, `tracestate`); {} outside a span."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def _carrier(values: Mapping[str, Any] | None) -> dict[str, str]:
    if not values:
        return {}
    return {name: value for name in TRACE_HEADERS if isinstance(value := values.get(name), str)}


def _attributes(correlation_id: Any, reservation_id: Any) -> dict[str, str]:
    attributes = {}
    if isinstance(correlation_id, str):
        attributes[CORRELATION_ATTRIBUTE] = correlation_id
    if isinstance(reservation_id, str):
        attributes[RESERVATION_ATTRIBUTE] = reservation_id
    return attributes


def annotate(reservation_id: str) -> None:
    """Name the reservation the current span is about (known only once it is made)."""
    trace.get_current_span().set_attribute(RESERVATION_ATTRIBUTE, reservation_id)


def step(
    name: str,
    parent: Mapping[str, Any] | None,
    kind: SpanKind,
    attributes: dict[str, str],
) -> contextlib.AbstractContextManager[Span]:
    """A span continuing the trace context in `parent` (W3C fields; none: a new trace), current
    while the block runs; an exception is its outcome."""
    context = _PROPAGATOR.extract(_carrier(parent)) if parent else None
    return span_scope(_tracer, name, kind, attributes, _fail, context)


@contextlib.contextmanager
def span_scope(
    tracer: trace.Tracer,
    name: str,
    kind: SpanKind,
    attributes: Mapping[str, str | int],
    on_error: Callable[[Span, BaseException], None],
    context: otel_context.Context | None = None,
) -> Iterator[Span]:
    """A span, current while the block runs, ended after it; `on_error` tells what an
    exception out of the block means for it. One generator where `start_as_current_span`
    nests three: a span costs the request path less."""
    span = tracer.start_span(name, context=context, kind=kind, attributes=attributes)
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield span
    except BaseException as error:
        on_error(span, error)
        raise
    finally:
        otel_context.detach(token)
        span.end()


def _fail(span: Span, error: BaseException) -> None:
    span.set_attribute(OUTCOME_ATTRIBUTE, f"error: {type(error).__name__}")
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))


def request_step(
    name: str, method: str, path: str, headers: Mapping[str, str], correlation_id: str
) -> contextlib.AbstractContextManager[Span]:
    """An HTTP function's execution as a server span, continuing the caller's `traceparent`
    when it sent one. The caller records the answer's status with `answered`."""
    attributes = _attributes(correlation_id, None)
    attributes["http.request.method"] = method
    attributes["url.path"] = path
    parent = {header: headers[header] for header in TRACE_HEADERS if header in headers}
    return step(name, parent, SpanKind.SERVER, attributes)


def answered(span: Span, status: int) -> None:
    span.set_attributes({"http.response.status_code": status, OUTCOME_ATTRIBUTE: str(status)})
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


def on_function_executed(listener: ExecutionListener) -> None:
    """Call `listener(function name, seconds)` after every function execution (the cost
    counters use it)."""
    _execution_listeners.append(listener)


_NOT_TIMED = contextlib.nullcontext()


def execution(name: str) -> contextlib.AbstractContextManager[None]:
    """A function's execution, timed for the listeners (none: nothing to do, on the hot path)."""
    return _timed(name) if _execution_listeners else _NOT_TIMED


@contextlib.contextmanager
def _timed(name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        for listener in _execution_listeners:
            listener(name, elapsed)


def traced_message(function: FunctionT) -> FunctionT:
    """A Service Bus trigger's execution as a span continuing the trace of its message (the
    `traceparent` in its application properties)."""
    name = function.__name__

    def begin(msg: Any) -> tuple[dict[str, str], dict[str, str]]:
        properties = msg.application_properties or msg.user_properties or {}
        reservation_id = properties.get("reservationId")
        return _carrier(properties), _attributes(msg.correlation_id, reservation_id)

    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def run_async(msg: Any) -> Any:
            parent, attributes = begin(msg)
            with execution(name), step(name, parent, SpanKind.CONSUMER, attributes):
                return await function(msg)

        return run_async  # type: ignore[return-value]

    @functools.wraps(function)
    def run(msg: Any) -> Any:
        parent, attributes = begin(msg)
        with execution(name), step(name, parent, SpanKind.CONSUMER, attributes):
            return function(msg)

    return run  # type: ignore[return-value]


def traced_timer(function: FunctionT) -> FunctionT:
    """A (sync) timer trigger's run as a span of its own, the root of a new trace (in Azure,
    under the host's invocation span when the worker hands one over), and an execution for the
    listeners. Nothing else would put a span around what the run writes: the events and notices
    of the sweeper's repairs are stamped with this one's context, so that the relays and
    projections they set off continue its trace (`devhost trace` finds them)."""
    name = function.__name__

    @functools.wraps(function)
    def run(timer: Any) -> Any:
        with execution(name), step(name, None, SpanKind.INTERNAL, {"faas.trigger": "timer"}):
            return function(timer)

    return run  # type: ignore[return-value]


def traced_changes(function: FunctionT) -> FunctionT:
    """A Cosmos DB trigger's execution as one span per trace among its documents: each
    document that carries a `traceContext` continues its trace, and is handed to the function
    with the context of that span, so that what the function passes on (the relay's messages)
    continues from there. A batch mixes many reservations: each span lasts the whole batch."""
    name = function.__name__

    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def run_async(docs: Any) -> Any:
            with execution(name), _document_spans(name, docs):
                return await function(docs)

        return run_async  # type: ignore[return-value]

    @functools.wraps(function)
    def run(docs: Any) -> Any:
        with execution(name), _document_spans(name, docs):
            return function(docs)

    return run  # type: ignore[return-value]


@contextlib.contextmanager
def _document_spans(name: str, documents: Any) -> Iterator[None]:
    spans: dict[str, tuple[Span, dict[str, str]]] = {}
    for document in documents:
        parent = _carrier(document.get(TRACE_CONTEXT_FIELD))
        if not parent:
            continue
        key = parent.get("traceparent", "")
        if key not in spans:
            spans[key] = _document_span(name, document, parent)
        span, context = spans[key]
        if context:
            document[TRACE_CONTEXT_FIELD] = context
    try:
        yield
    except BaseException as error:
        for span, _ in spans.values():
            _fail(span, error)
            span.end()
        raise
    for span, _ in spans.values():
        span.end()


def _document_span(name: str, document: Any, parent: dict[str, str]) -> tuple[Span, dict[str, str]]:
    payload = document.get("payload")
    reservation_id = (
        payload.get("reservationId") if isinstance(payload, dict) else None
    ) or document.get("reservationId")
    what = document.get("eventType") or document.get("type")
    span = _tracer.start_span(
        f"{name} {what}",
        context=_PROPAGATOR.extract(parent),
        kind=SpanKind.CONSUMER,
        attributes=_attributes(document.get("correlationId"), reservation_id),
    )
    context: dict[str, str] = {}
    if span.get_span_context().is_valid:
        _PROPAGATOR.inject(context, context=trace.set_span_in_context(span))
    return span, context
