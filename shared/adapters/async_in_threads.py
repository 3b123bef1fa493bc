"""`AsyncDocumentStore` for a store whose client blocks (the sync Cosmos DB SDK).

Each awaited operation runs the blocking one in a worker thread (`asyncio.to_thread`), so the
event loop goes on serving other requests while the database answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from shared.ports import BatchOperation, Document, DocumentStore


class AsyncInThreads:
    """Mix into a `DocumentStore` to give it the `*_async` operations."""

    async def read_async(
        self: DocumentStore, container: str, partition_key: str, id: str
    ) -> Document:
        return await asyncio.to_thread(self.read, container, partition_key, id)

    async def create_async(self: DocumentStore, container: str, document: Document) -> Document:
        return await asyncio.to_thread(self.create, container, document)

    async def replace_async(
        self: DocumentStore, container: str, document: Document, if_match: str | None = None
    ) -> Document:
        return await asyncio.to_thread(self.replace, container, document, if_match)

    async def delete_async(
        self: DocumentStore,
        container: str,
        partition_key: str,
        id: str,
        if_match: str | None = None,
    ) -> None:
        await asyncio.to_thread(self.delete, container, partition_key, id, if_match)

    async def batch_async(
        self: DocumentStore,
        container: str,
        partition_key: str,
        operations: Sequence[BatchOperation],
    ) -> list[Document | None]:
        return await asyncio.to_thread(self.batch, container, partition_key, operations)
