"""The message-bus backends the contract suite runs against, behind one small interface.

Every backend serves `shared.topology.TOPICS` and starts empty. Time is the backend's business:
the embedded bus runs on a manual clock, so "wait out a 60 s lock" is instant; a backend on a
real namespace sleeps instead (and may skip a test whose wait it finds too long).

To run the suite against Azure Service Bus, provide a module
`tests/contract/bus_backends_azure.py` with `make_backend(tmp_path: Path) -> BusBackend`;
it is used when SERVICEBUS_FQDN is set.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from devhost.embedded.sqlite_bus import SqliteMessageBus
from shared.ports import MessagePublisher, MessageReceiver, ReceivedMessage
from tests.support.memory_bus import BusState, MemoryMessageBus


class Bus(MessagePublisher, MessageReceiver, Protocol):
    """What the contract suite exercises: publishing and peek-lock receiving."""


class BusBackend(Protocol):
    bus: Bus

    def now(self) -> datetime:
        """The bus's current time."""

    def advance(self, seconds: float) -> None:
        """Let `seconds` of bus time pass."""

    def dead_letters(self, topic: str, subscription: str) -> list[ReceivedMessage]:
        """The subscription's dead-letter queue, oldest first, left in place."""

    def reopen(self) -> None:
        """Close `bus` and replace it with a new client on the same durable state."""

    def close(self) -> None: ...


class ManualClock:
    """A UTC clock that moves only when told to. Safe to read from many threads."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


class LocalBus(Bus, Protocol):
    """A bus of this process: it can list its dead letters and be closed."""

    def dead_letters(self, topic: str, subscription: str) -> list[ReceivedMessage]: ...

    def close(self) -> None: ...


class ClockedBackend:
    """A bus of this process on a manual clock; `open_bus` opens a client on its durable state
    (a reopen opens another on the same state)."""

    def __init__(self, open_bus: Callable[[ManualClock], LocalBus]) -> None:
        self.clock = ManualClock()
        self._open_bus = open_bus
        self.bus: LocalBus = open_bus(self.clock)

    def now(self) -> datetime:
        return self.clock()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def dead_letters(self, topic: str, subscription: str) -> list[ReceivedMessage]:
        return self.bus.dead_letters(topic, subscription)

    def reopen(self) -> None:
        self.bus.close()
        self.bus = self._open_bus(self.clock)

    def close(self) -> None:
        self.bus.close()


def sqlite_backend(data_dir: Path) -> BusBackend:
    """The embedded bus in a temporary directory."""
    return ClockedBackend(lambda clock: SqliteMessageBus(data_dir, clock=clock))


def memory_backend(_: Path) -> BusBackend:
    """The unit tests' in-memory bus (tests/support/memory_bus.py)."""
    state = BusState()
    return ClockedBackend(lambda clock: MemoryMessageBus(clock=clock, state=state))


def backend_factories() -> dict[str, Callable[[Path], BusBackend]]:
    """Name → factory of every backend available in this environment."""
    factories: dict[str, Callable[[Path], BusBackend]] = {
        "memory": memory_backend,
        "sqlite": sqlite_backend,
    }
    if os.environ.get("SERVICEBUS_FQDN"):
        azure = importlib.import_module("tests.contract.bus_backends_azure")
        factories["servicebus"] = azure.make_backend
    return factories
