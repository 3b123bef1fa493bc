"""The store and the bus as the tracing needs them: decorators around the ports.

`TracedDocumentStore` stamps the current trace context on every outbox event and notice it
writes (the `traceContext` field), so that the change feed's consumers continue the trace of
the function that raised them, and records each transactional batch as a span.
`TracedPublisher` puts the current trace context in the application properties of a message
that has none (the payment's scheduled retries; the relay's carry their event's own).
Both pass everything else through to the adapter they wrap, whichever backend it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from shared.observability import TRACE_CONTEXT_FIELD, trace_context
from shared.ports import (
    BatchOperation,
    Create,
    Document,
    OutboundMessage,
    Replace,
    Upsert,
)

STAMPED_TYPES = frozenset({"event", "notice"})
_tracer = trace.get_tracer("outerpark.store")


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


def _batch_span(container: str, operations: Sequence[BatchOperation]) -> Any:
    return _tracer.start_as_current_span(
        f"batch {container}",
        kind=SpanKind.CLIENT,
        attributes={
            "db.system.name": "azure.cosmosdb",
            "db.collection.name": container,
            "db.operation.name": "batch",
            "db.operation.batch.size": len(operations),
        },
    )


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
