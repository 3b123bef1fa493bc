"""Use-case tests run against the real embedded store in a fresh directory per test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devhost.embedded.sqlite_bus import SqliteMessageBus
from devhost.embedded.sqlite_store import SqliteDocumentStore
from shared.domain.caller import Caller
from shared.domain.commands import RegisterMusical
from shared.domain.models import Musical
from shared.handlers.musicals import register_musical


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
def store(tmp_path: Path) -> Iterator[SqliteDocumentStore]:
    opened = SqliteDocumentStore(tmp_path / "data")
    yield opened
    opened.close()


@pytest.fixture
def bus(tmp_path: Path, clock: TickingClock) -> Iterator[SqliteMessageBus]:
    """The real embedded bus, on the test's clock (scheduled messages wait for `advance`)."""
    opened = SqliteMessageBus(tmp_path / "bus", clock=clock.now)
    yield opened
    opened.close()


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def customer() -> Caller:
    return Caller(customer_id="alice")


@pytest.fixture
def musical(store: SqliteDocumentStore, clock: TickingClock) -> Musical:
    return register_musical(
        RegisterMusical(title="Hamilton", seats=10, price=100), store, clock.now()
    )
