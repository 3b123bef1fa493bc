"""A DocumentStore decorator that counts the writes going through it, by container.

    store = CountingStore(SqliteDocumentStore(path))
    ... use it as the store ...
    store.writes            # Counter: container → write calls (a batch is one)
    store.operations        # Counter: container → operations written (a batch's, one by one)

Counting at the port, not in an adapter, measures what the use cases ask for on any backend:
on Cosmos DB each counted write is one request (and its RUs), locally one SQLite transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from shared.ports import (
    BatchOperation,
    Condition,
    Document,
    DocumentStore,
    OrderBy,
    Page,
    PatchOperation,
    Read,
)


class CountingStore:
    """Every DocumentStore call is passed on; writes are counted first."""

    def __init__(self, inner: DocumentStore) -> None:
        self._inner = inner
        self.writes: Counter[str] = Counter()
        self.operations: Counter[str] = Counter()

    def reset(self) -> None:
        self.writes.clear()
        self.operations.clear()

    def _count(self, container: str, operations: int = 1) -> None:
        self.writes[container] += 1
        self.operations[container] += operations

    def read(self, container: str, partition_key: str, id: str) -> Document:
        return self._inner.read(container, partition_key, id)

    def create(self, container: str, document: Document) -> Document:
        self._count(container)
        return self._inner.create(container, document)

    def upsert(self, container: str, document: Document, if_match: str | None = None) -> Document:
        self._count(container)
        return self._inner.upsert(container, document, if_match)

    def replace(self, container: str, document: Document, if_match: str | None = None) -> Document:
        self._count(container)
        return self._inner.replace(container, document, if_match)

    def patch(
        self,
        container: str,
        partition_key: str,
        id: str,
        operations: Sequence[PatchOperation],
        condition: Sequence[Condition] = (),
        if_match: str | None = None,
    ) -> Document:
        self._count(container)
        return self._inner.patch(container, partition_key, id, operations, condition, if_match)

    def delete(
        self, container: str, partition_key: str, id: str, if_match: str | None = None
    ) -> None:
        self._count(container)
        self._inner.delete(container, partition_key, id, if_match)

    def batch(
        self, container: str, partition_key: str, operations: Sequence[BatchOperation]
    ) -> list[Document | None]:
        written = sum(1 for operation in operations if not isinstance(operation, Read))
        if written:
            self._count(container, written)
        return self._inner.batch(container, partition_key, operations)

    def query(
        self,
        container: str,
        partition_key: str,
        where: Sequence[Condition] = (),
        order_by: Sequence[OrderBy] = (),
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page:
        return self._inner.query(container, partition_key, where, order_by, limit, continuation)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
