"""Backends of the document-store contract suite.

Every test that takes the `store` fixture runs once per entry of `STORE_BACKENDS`. To plug in a
backend, append a `StoreBackend` whose `open` yields a store serving `request.containers`,
isolated by `request.unique_id` (a fresh database, a fresh directory…).

Time: a backend that honours `request.clock` (`controls_clock=True`) lets TTL tests move time
forward instantly. For the others, `time_travel` really sleeps, and the tests using it are
marked `slow`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest

from devhost.embedded.sqlite_store import SqliteDocumentStore
from devhost.embedded.sqlite_store_client import SqliteStoreClient
from shared import topology
from shared.ports import AsyncDocumentStore, ChangeFeed, DocumentStore
from shared.topology import ContainerSpec
from tests.contract import cosmos_backend
from tests.support.memory_store import MemoryDocumentStore
from tests.support.store_service import running_store_service


class Store(DocumentStore, AsyncDocumentStore, ChangeFeed, Protocol):
    """What the suite exercises: every store port on one object."""


# Containers of the suite: one per TTL mode, plus the real musicals and performances
# containers for the reservation-shaped and seat-hold batches.
PLAIN = ContainerSpec("contract_plain", "/pk")
TTL_ON = ContainerSpec("contract_ttl_on", "/pk", default_ttl=-1)
TTL_DEFAULT = ContainerSpec("contract_ttl_default", "/pk", default_ttl=1)
CONTRACT_CONTAINERS: dict[str, ContainerSpec] = {
    spec.name: spec
    for spec in (PLAIN, TTL_ON, TTL_DEFAULT, topology.MUSICALS, topology.PERFORMANCES)
}


class ManualClock:
    """Epoch seconds that move only when told to."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class BackendRequest:
    unique_id: str
    tmp_path: Path
    containers: Mapping[str, ContainerSpec]
    clock: Callable[[], float]


@dataclass(frozen=True)
class StoreBackend:
    name: str
    open: Callable[[BackendRequest], AbstractContextManager[Store]]
    controls_clock: bool
    marks: tuple[pytest.MarkDecorator, ...] = field(default_factory=tuple)


@contextmanager
def _open_sqlite(request: BackendRequest) -> Iterator[Store]:
    store = SqliteDocumentStore(
        request.tmp_path / request.unique_id, request.containers, clock=request.clock
    )
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _open_sqlite_service(request: BackendRequest) -> Iterator[Store]:
    """The store as devhost's function hosts use it: a client of the store service."""
    data_dir = request.tmp_path / request.unique_id
    with running_store_service(data_dir, request.containers, request.clock) as socket_path:
        client = SqliteStoreClient(data_dir, socket_path, request.containers, request.clock)
        try:
            yield client
        finally:
            client.close()


@contextmanager
def _open_memory(request: BackendRequest) -> Iterator[Store]:
    """The unit tests' in-memory store (tests/support/memory_store.py)."""
    store = MemoryDocumentStore(request.containers, clock=request.clock)
    try:
        yield store
    finally:
        store.close()


STORE_BACKENDS: list[StoreBackend] = [
    StoreBackend(name="memory", open=_open_memory, controls_clock=True),
    StoreBackend(name="sqlite", open=_open_sqlite, controls_clock=True),
    StoreBackend(name="sqlite-service", open=_open_sqlite_service, controls_clock=True),
    StoreBackend(
        name=cosmos_backend.NAME,
        open=cosmos_backend.open_store,
        controls_clock=False,
        marks=cosmos_backend.MARKS,
    ),
]


@pytest.fixture(
    params=[pytest.param(b, id=b.name, marks=list(b.marks)) for b in STORE_BACKENDS],
)
def backend(request: pytest.FixtureRequest) -> StoreBackend:
    return request.param


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(backend: StoreBackend, clock: ManualClock, tmp_path: Path) -> Iterator[Store]:
    request = BackendRequest(
        unique_id=f"t{uuid.uuid4().hex[:12]}",
        tmp_path=tmp_path,
        containers=CONTRACT_CONTAINERS,
        clock=clock,
    )
    with backend.open(request) as opened:
        yield opened


@pytest.fixture
def time_travel(backend: StoreBackend, clock: ManualClock) -> Callable[[float], None]:
    """Let `seconds` pass for the store: instantly when it follows our clock, else by sleeping."""

    def travel(seconds: float) -> None:
        if backend.controls_clock:
            clock.advance(seconds)
        else:
            time.sleep(seconds)

    return travel


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that must really wait (time_travel on a backend without a clock) are slow."""
    cosmos_backend.mark_test_server_gaps(items)
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "time_travel" not in getattr(item, "fixturenames", ()):
            continue
        if not getattr(callspec.params.get("backend"), "controls_clock", True):
            item.add_marker(pytest.mark.slow)
