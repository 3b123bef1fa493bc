"""The unit tests' in-memory store and bus checked against the app's ports by the type checker
(`make lint`): never called; see shared/ports_conformance.py."""

from __future__ import annotations

from shared.ports import (
    AsyncDocumentStore,
    ChangeFeed,
    DocumentStore,
    MessagePublisher,
    MessageReceiver,
)
from tests.support.memory_bus import MemoryMessageBus
from tests.support.memory_store import MemoryDocumentStore


def memory_store(
    adapter: MemoryDocumentStore,
) -> tuple[DocumentStore, AsyncDocumentStore, ChangeFeed]:
    return adapter, adapter, adapter


def memory_bus(adapter: MemoryMessageBus) -> tuple[MessagePublisher, MessageReceiver]:
    return adapter, adapter
