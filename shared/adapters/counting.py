"""Counting what the app asks of Cosmos DB and Service Bus: decorators around the ports.

`python -m bench.cloud_cost` turns these tallies into request units and money. Enabled by
`OUTERPARK_COUNT_OPERATIONS=1` (bootstrap then wraps the configured store and bus); the
adapters themselves are not touched. Every tally is a flat key in one mapping, so that two
snapshots subtract and a run divides by its sagas:

- `cosmos.read` (point reads, those that found nothing included: Cosmos DB charges a 404 too),
  `cosmos.read.missing` (those), `cosmos.query` (pages), `cosmos.query.items`, `cosmos.batch`,
  `cosmos.batch.operations`, `cosmos.write.<create|upsert|replace|patch|delete>`;
- `cosmos.read.kb`, `cosmos.query.kb`, `cosmos.write.kb`: the operations' sizes, each rounded up
  to whole kilobytes as Cosmos DB charges them (a read that found nothing as 1), and
  `cosmos.write.size.<n>kb` (writes by size);
- `bus.publish` (calls), `bus.sent`, `bus.scheduled`, `bus.received`, `bus.completed`,
  `bus.abandoned`, `bus.dead_lettered`;
- `function.<name>` and `function.<name>.seconds`, from `executed` (shared.observability's
  execution listener).

Operations inside a transactional batch count as reads and writes too (Cosmos DB charges a
batch as the sum of its operations), and once more under `cosmos.batch.operations`. A
`read_many` of n keys counts as the n point reads it stands for (the Cosmos DB adapter makes
exactly those). The JSON-text reads (`query_json_async`, `read_many_json_async`) are sized by
the texts they return, which hold only the fields asked for: a lower bound of what Cosmos DB
charges, since it reads whole items (most are under 1 KB, the least counted, either way).
"""

from __future__ import annotations

import json
import math
import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from shared.ports import (
    BatchOperation,
    Create,
    Delete,
    Document,
    JsonPage,
    NotFound,
    OutboundMessage,
    Page,
    Patch,
    Read,
    ReceivedMessage,
    Replace,
    Upsert,
)

KB = 1024


def kilobytes(document: Document | None) -> int:
    """A document's size in whole kilobytes (at least 1), as request charges are reckoned."""
    if document is None:
        return 1
    return text_kilobytes(json.dumps(document, separators=(",", ":"), default=str))


def text_kilobytes(text: str) -> int:
    """A JSON text's size in whole kilobytes (at least 1)."""
    return max(1, math.ceil(len(text.encode()) / KB))


class OperationCounts:
    """Thread-safe tallies (see the module)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tally: defaultdict[str, float] = defaultdict(float)

    def add(self, **amounts: float) -> None:
        with self._lock:
            for key, amount in amounts.items():
                self._tally[key.replace("__", ".")] += amount

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self._tally)

    def executed(self, function: str, seconds: float) -> None:
        with self._lock:
            self._tally[f"function.{function}"] += 1
            self._tally[f"function.{function}.seconds"] += seconds

    def read(self, document: Document) -> None:
        self.reads([kilobytes(document)])

    def reads(self, sizes: Sequence[int], missing: int = 0) -> None:
        """Point reads that found items of `sizes` (KB), and `missing` that found nothing."""
        with self._lock:
            self._tally["cosmos.read"] += len(sizes) + missing
            self._tally["cosmos.read.kb"] += sum(sizes) + missing
            if missing:
                self._tally["cosmos.read.missing"] += missing

    def queried(self, sizes: Sequence[int]) -> None:
        """A query page returning items of `sizes` (KB); an empty page is charged as 1 KB."""
        self.add(
            cosmos__query=1, cosmos__query__items=len(sizes), cosmos__query__kb=sum(sizes) or 1
        )

    def wrote(self, kind: str, document: Document | None) -> None:
        size = kilobytes(document)
        with self._lock:
            self._tally[f"cosmos.write.{kind}"] += 1
            self._tally["cosmos.write.kb"] += size
            self._tally[f"cosmos.write.size.{size}kb"] += 1


COUNTS = OperationCounts()
"""The process's tallies (one store and one bus per process, as bootstrap builds them)."""

_BATCH_KINDS: dict[type, str] = {
    Create: "create",
    Upsert: "upsert",
    Replace: "replace",
    Patch: "patch",
    Delete: "delete",
}


class CountingDocumentStore:
    """A DocumentStore (and AsyncDocumentStore) that tallies each operation in `counts`."""

    def __init__(self, inner: Any, counts: OperationCounts = COUNTS) -> None:
        self.inner = inner
        self.counts = counts

    def __getattr__(self, name: str) -> Any:
        """The rest of the adapter (the embedded store's change feed, `close`...), uncounted."""
        return getattr(self.inner, name)

    def read(self, container: str, partition_key: str, id: str) -> Document:
        try:
            document = self.inner.read(container, partition_key, id)
        except NotFound:
            self.counts.reads([], missing=1)
            raise
        self.counts.read(document)
        return document

    def create(self, container: str, document: Document) -> Document:
        stored = self.inner.create(container, document)
        self.counts.wrote("create", stored)
        return stored

    def upsert(self, container: str, document: Document, if_match: str | None = None) -> Document:
        stored = self.inner.upsert(container, document, if_match)
        self.counts.wrote("upsert", stored)
        return stored

    def replace(self, container: str, document: Document, if_match: str | None = None) -> Document:
        stored = self.inner.replace(container, document, if_match)
        self.counts.wrote("replace", stored)
        return stored

    def patch(self, container: str, partition_key: str, id: str, *args: Any, **kw: Any) -> Document:
        stored = self.inner.patch(container, partition_key, id, *args, **kw)
        self.counts.wrote("patch", stored)
        return stored

    def delete(self, container: str, partition_key: str, id: str, *args: Any, **kw: Any) -> None:
        self.inner.delete(container, partition_key, id, *args, **kw)
        self.counts.wrote("delete", None)

    def query(self, container: str, partition_key: str, *args: Any, **kw: Any) -> Page:
        page: Page = self.inner.query(container, partition_key, *args, **kw)
        self.counts.queried([kilobytes(item) for item in page.items])
        return page

    def batch(
        self, container: str, partition_key: str, operations: Sequence[BatchOperation]
    ) -> list[Document | None]:
        results = self.inner.batch(container, partition_key, operations)
        self._batched(operations, results)
        return results

    async def read_async(self, container: str, partition_key: str, id: str) -> Document:
        try:
            document = await self.inner.read_async(container, partition_key, id)
        except NotFound:
            self.counts.reads([], missing=1)
            raise
        self.counts.read(document)
        return document

    async def create_async(self, container: str, document: Document) -> Document:
        stored = await self.inner.create_async(container, document)
        self.counts.wrote("create", stored)
        return stored

    async def replace_async(
        self, container: str, document: Document, if_match: str | None = None
    ) -> Document:
        stored = await self.inner.replace_async(container, document, if_match)
        self.counts.wrote("replace", stored)
        return stored

    async def delete_async(
        self, container: str, partition_key: str, id: str, if_match: str | None = None
    ) -> None:
        await self.inner.delete_async(container, partition_key, id, if_match)
        self.counts.wrote("delete", None)

    async def batch_async(
        self, container: str, partition_key: str, operations: Sequence[BatchOperation]
    ) -> list[Document | None]:
        results = await self.inner.batch_async(container, partition_key, operations)
        self._batched(operations, results)
        return results

    async def query_async(self, container: str, partition_key: str, *args: Any, **kw: Any) -> Page:
        page: Page = await self.inner.query_async(container, partition_key, *args, **kw)
        self.counts.queried([kilobytes(item) for item in page.items])
        return page

    async def read_many_async(
        self, container: str, keys: Sequence[tuple[str, str]]
    ) -> list[Document]:
        documents: list[Document] = await self.inner.read_many_async(container, keys)
        self.counts.reads([kilobytes(d) for d in documents], missing=len(keys) - len(documents))
        return documents

    async def query_json_async(
        self, container: str, partition_key: str, *args: Any, **kw: Any
    ) -> JsonPage:
        page: JsonPage = await self.inner.query_json_async(container, partition_key, *args, **kw)
        self.counts.queried([text_kilobytes(text) for text in page.items])
        return page

    async def read_many_json_async(
        self, container: str, keys: Sequence[tuple[str, str]], fields: Sequence[str]
    ) -> list[str]:
        texts: list[str] = await self.inner.read_many_json_async(container, keys, fields)
        self.counts.reads([text_kilobytes(t) for t in texts], missing=len(keys) - len(texts))
        return texts

    def _batched(
        self, operations: Sequence[BatchOperation], results: Sequence[Document | None]
    ) -> None:
        self.counts.add(cosmos__batch=1, cosmos__batch__operations=len(operations))
        for operation, result in zip(operations, results, strict=True):
            if isinstance(operation, Read):
                self.counts.read(result or {})
            else:
                self.counts.wrote(_BATCH_KINDS[type(operation)], result)


class CountingBus:
    """A MessagePublisher (and, for the embedded bus, its receiving side) that tallies each
    message sent, received and settled in `counts`."""

    def __init__(self, inner: Any, counts: OperationCounts = COUNTS) -> None:
        self.inner = inner
        self.counts = counts

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def publish(self, topic: str, messages: Sequence[OutboundMessage]) -> None:
        self.inner.publish(topic, messages)
        scheduled = sum(1 for m in messages if m.scheduled_enqueue_time is not None)
        self.counts.add(
            bus__publish=1, bus__sent=len(messages) - scheduled, bus__scheduled=scheduled
        )

    def receive(self, topic: str, subscription: str, max_messages: int = 1) -> Any:
        messages = self.inner.receive(topic, subscription, max_messages)
        self.counts.add(bus__received=len(messages))
        return messages

    def complete(self, message: ReceivedMessage) -> None:
        self.inner.complete(message)
        self.counts.add(bus__completed=1)

    def complete_all(self, messages: Sequence[ReceivedMessage]) -> list[ReceivedMessage]:
        lost = self.inner.complete_all(messages)
        self.counts.add(bus__completed=len(messages) - len(lost))
        return lost

    def abandon(self, message: ReceivedMessage) -> None:
        self.inner.abandon(message)
        self.counts.add(bus__abandoned=1)

    def dead_letter(self, message: ReceivedMessage, reason: str, description: str = "") -> None:
        self.inner.dead_letter(message, reason, description)
        self.counts.add(bus__dead_lettered=1)
