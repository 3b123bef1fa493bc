"""The embedded backends checked against the app's ports by the type checker (`make lint`):
never called; see shared/ports_conformance.py."""

from __future__ import annotations

from devhost.embedded.backends import LOCAL_BACKENDS
from devhost.embedded.sqlite_bus import SqliteMessageBus
from devhost.embedded.sqlite_store import SqliteDocumentStore
from devhost.embedded.sqlite_store_client import SqliteStoreClient
from shared.bootstrap import LocalBackends
from shared.ports import (
    AsyncDocumentStore,
    ChangeFeed,
    DocumentStore,
    MessagePublisher,
    MessageReceiver,
)


def sqlite_store(
    adapter: SqliteDocumentStore,
) -> tuple[DocumentStore, AsyncDocumentStore, ChangeFeed]:
    return adapter, adapter, adapter


def store_client(
    adapter: SqliteStoreClient,
) -> tuple[DocumentStore, AsyncDocumentStore, ChangeFeed]:
    return adapter, adapter, adapter


def sqlite_bus(adapter: SqliteMessageBus) -> tuple[MessagePublisher, MessageReceiver]:
    return adapter, adapter


def local_backends() -> LocalBackends:
    """The module bootstrap imports when OUTERPARK_LOCAL_BACKENDS names it."""
    import devhost.embedded.backends as module

    assert module.__name__ == LOCAL_BACKENDS
    return module
