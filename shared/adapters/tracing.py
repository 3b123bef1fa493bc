"""The store and the bus as the tracing needs them: decorators around the ports.

`TracedDocumentStore` stamps the current trace context on every outbox event and notice it
writes (the `traceContext` field), so that the change feed's consumers continue the trace of
the function that raised them, and records each transactional batch as a span.
`TracedPublisher` puts the current trace context in the application properties of a message
that has none (the payment's scheduled retries; the relay's carry their event's own).
Both pass everything else through to the adapter they wrap, whichever backend it is.
`TracedPaymentGateway` records each call to the card gateway (confirm, lookup, cancel) as a
client span, a child of the handler's span, with the operation, the order id and the outcome's
family; the HTTP client adds the answer's status code. Never the secret key, never card data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from shared.breaker import BreakerOpen
from shared.observability import (
    OUTCOME_ATTRIBUTE,
    TRACE_CONTEXT_FIELD,
    span_scope,
    trace_context,
)
from shared.ports import (
    AlreadyProcessed,
    BatchFailed,
    BatchOperation,
    Conflict,
    Create,
    Document,
    GatewayNotReached,
    GatewayPayment,
    MerchantRejected,
    NotFound,
    OutboundMessage,
    PaymentApproval,
    PaymentDeclined,
    PaymentGateway,
    PreconditionFailed,
    Replace,
    StillProcessing,
    StoreError,
    Upsert,
)

STAMPED_TYPES = frozenset({"event", "notice"})
_tracer = trace.get_tracer("outerpark.store")
_gateway_tracer = trace.get_tracer("outerpark.gateway")
OPERATION_ATTRIBUTE = "outerpark.gateway.operation"
ORDER_ATTRIBUTE = "outerpark.order_id"
DECLINE_CODE_ATTRIBUTE = "outerpark.gateway.decline_code"
R = TypeVar("R")


def _stamped(document: Document) -> Document:
    if document.get("type") not in STAMPED_TYPES or document.get(TRACE_CONTEXT_FIELD):
        return document
    context = trace_context()
    return {**document, TRACE_CONTEXT_FIELD: context} if context else document


def _stamped_operations(operations: Sequence[BatchOperation]) -> Sequence[BatchOperation]:
    stamped: list[BatchOperation] = []
    for operation in operations:
        if isinstance(operation, Create | Upsert | Replace):
            document = _stamped(operation.document)
            if document is not operation.document:
                stamped.append(replace(operation, document=document))
                continue
        stamped.append(operation)
    return stamped


class TracedDocumentStore:
    """A DocumentStore (and AsyncDocumentStore) that stamps trace contexts; see the module."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.read = inner.read
        self.patch = inner.patch
        self.delete = inner.delete
        self.query = inner.query
        if hasattr(inner, "read_async"):
            self.read_async = inner.read_async
            self.delete_async = inner.delete_async

    def __getattr__(self, name: str) -> Any:
        """The rest of the adapter (the embedded store's change feed, `close`...)."""
        return getattr(self.inner, name)

    def create(self, container: str, document: Document) -> Document:
        return self.inner.create(container, _stamped(document))

    def upsert(self, container: str, document: Document, if_match: str | None = None) -> Document:
        return self.inner.upsert(container, _stamped(document), if_match)

    def replace(self, container: str, document: Document, if_match: str | None = None) -> Document:
        return self.inner.replace(container, _stamped(document), if_match)

    def batch(
        self, container: str, partition_key: str, operations: Sequence[BatchOperation]
    ) -> list[Document | None]:
        operations = _stamped_operations(operations)
        with _batch_span(container, operations):
            return self.inner.batch(container, partition_key, operations)

    async def create_async(self, container: str, document: Document) -> Document:
        return await self.inner.create_async(container, _stamped(document))

    async def replace_async(
        self, container: str, document: Document, if_match: str | None = None
    ) -> Document:
        return await self.inner.replace_async(container, _stamped(document), if_match)

    async def batch_async(
        self, container: str, partition_key: str, operations: Sequence[BatchOperation]
    ) -> list[Document | None]:
        operations = _stamped_operations(operations)
        with _batch_span(container, operations):
            return await self.inner.batch_async(container, partition_key, operations)


def _batch_span(
    container: str, operations: Sequence[BatchOperation]
) -> contextlib.AbstractContextManager[trace.Span]:
    """A batch's client span. A batch the store refused (an item missing or already there, a
    condition that did not hold) is an answer the use case reads, not a failure of the store:
    the span names the operation and the cause, and its status stays unset. Anything else is
    an error. Neither records a stack trace: formatting one costs more CPU than the whole
    batch does on the reservation path."""
    attributes: dict[str, str | int] = {
        "db.system.name": "azure.cosmosdb",
        "db.collection.name": container,
        "db.operation.name": "batch",
        "db.operation.batch.size": len(operations),
    }
    return span_scope(_tracer, f"batch {container}", SpanKind.CLIENT, attributes, _batch_failed)


def _batch_failed(span: trace.Span, error: BaseException) -> None:
    if isinstance(error, BatchFailed):
        _batch_refused(span, error)
    elif isinstance(error, Exception):
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))


_BATCH_STATUS_CODES: tuple[tuple[type[StoreError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (PreconditionFailed, 412),
)


def _batch_refused(span: trace.Span, refused: BatchFailed) -> None:
    cause = refused.cause
    code = next((code for kind, code in _BATCH_STATUS_CODES if isinstance(cause, kind)), None)
    if code is None:
        span.set_status(Status(StatusCode.ERROR, f"{type(refused).__name__}: {refused}"))
        return
    span.set_attribute("db.response.status_code", str(code))
    span.set_attribute(OUTCOME_ATTRIBUTE, f"operation {refused.index}: {type(cause).__name__}")


class TracedPublisher:
    """A MessagePublisher that hands the current trace context on; see the module."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        """The rest of the adapter (the embedded bus's receiving side, `close`...)."""
        return getattr(self.inner, name)

    def publish(self, topic: str, messages: Sequence[OutboundMessage]) -> None:
        context = trace_context()
        if context:
            messages = [_with_context(message, context) for message in messages]
        self.inner.publish(topic, messages)


def _with_context(message: OutboundMessage, context: dict[str, str]) -> OutboundMessage:
    if "traceparent" in message.application_properties:
        return message
    return replace(message, application_properties={**message.application_properties, **context})


class TracedPaymentGateway:
    """A PaymentGateway whose calls are spans; see the module.

    Outcomes (`outerpark.outcome`): approved, declined (its code in
    `outerpark.gateway.decline_code`), found, not found, cancelled, already processed, still
    processing; and, as errors: merchant rejected, not reached, breaker open, unknown (a 5xx, a
    timeout, an answer outside docs/payment-gateway.md). A cancel's order id is the one its
    Idempotency-Key names: the payment handler keys a cancel `<order id>.cancel`.
    """

    def __init__(self, inner: PaymentGateway) -> None:
        self.inner = inner

    def confirm(self, order_id: str, amount: int, order_name: str) -> PaymentApproval:
        return _gateway_call(
            "confirm",
            order_id,
            lambda: self.inner.confirm(order_id, amount, order_name),
            lambda _: "approved",
        )

    def lookup(self, order_id: str) -> GatewayPayment | None:
        return _gateway_call(
            "lookup",
            order_id,
            lambda: self.inner.lookup(order_id),
            lambda found: "not found" if found is None else "found",
        )

    def cancel(
        self,
        payment_key: str,
        reason: str,
        idempotency_key: str,
        cancel_amount: int | None = None,
    ) -> None:
        _gateway_call(
            "cancel",
            idempotency_key.removesuffix(".cancel"),
            lambda: self.inner.cancel(payment_key, reason, idempotency_key, cancel_amount),
            lambda _: "cancelled",
        )

    def admits(self) -> bool:
        return self.inner.admits()


def _gateway_call(
    operation: str, order_id: str, call: Callable[[], R], outcome: Callable[[R], str]
) -> R:
    attributes = {OPERATION_ATTRIBUTE: operation, ORDER_ATTRIBUTE: order_id}
    with span_scope(
        _gateway_tracer, f"gateway {operation}", SpanKind.CLIENT, attributes, _gateway_failed
    ) as span:
        result = call()
        span.set_attribute(OUTCOME_ATTRIBUTE, outcome(result))
        return result


_WORKING_ANSWERS: tuple[tuple[type[Exception], str], ...] = (
    (AlreadyProcessed, "already processed"),
    (StillProcessing, "still processing"),
)
_FAILURES: tuple[tuple[type[Exception], str], ...] = (
    (MerchantRejected, "merchant rejected"),
    (BreakerOpen, "breaker open"),
    (GatewayNotReached, "not reached"),
)


def _gateway_failed(span: trace.Span, error: BaseException) -> None:
    """Name the outcome of a call that raised: a working gateway's answer is no error."""
    if not isinstance(error, Exception):
        return
    if isinstance(error, PaymentDeclined):
        span.set_attribute(OUTCOME_ATTRIBUTE, "declined")
        span.set_attribute(DECLINE_CODE_ATTRIBUTE, error.code)
        return
    for kind, outcome in _WORKING_ANSWERS:
        if isinstance(error, kind):
            span.set_attribute(OUTCOME_ATTRIBUTE, outcome)
            return
    family = next((name for kind, name in _FAILURES if isinstance(error, kind)), "unknown")
    span.set_attribute(OUTCOME_ATTRIBUTE, family)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
