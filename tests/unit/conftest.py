"""Use-case tests run against the in-memory store and bus (tests/support/memory_*.py), held to
the same contract suites as the real backends: no disk."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.caller import Caller
from shared.domain.commands import RegisterMusical
from shared.domain.models import Musical
from shared.handlers.musicals import MusicalDeps, register_musical
from tests.support.memory_bus import MemoryMessageBus
from tests.support.memory_store import MemoryDocumentStore


class TickingClock:
    """A clock that moves one millisecond every time it is read, so that order is visible."""

    def __init__(self) -> None:
        self._now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        self._now += timedelta(milliseconds=1)
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


@pytest.fixture
def store() -> Iterator[MemoryDocumentStore]:
    opened = MemoryDocumentStore()
    yield opened
    opened.close()


@pytest.fixture
def bus(clock: TickingClock) -> Iterator[MemoryMessageBus]:
    """The bus, on the test's clock (scheduled messages wait for `advance`)."""
    opened = MemoryMessageBus(clock=clock.now)
    yield opened
    opened.close()


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def customer() -> Caller:
    return Caller(customer_id="alice")


@pytest.fixture
def musical(store: MemoryDocumentStore, clock: TickingClock) -> Musical:
    return register_musical(
        RegisterMusical(title="Hamilton", seats=10, price=100), MusicalDeps(store, clock)
    )
