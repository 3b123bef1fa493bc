"""Embedded-only extras of the SQLite store: waiting for changes, purging expired items."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.embedded import sqlite_reader
from devhost.embedded.sqlite_store import SqliteDocumentStore
from shared.topology import ContainerSpec

FEED = ContainerSpec("feed", "/pk", default_ttl=-1)
OTHER = ContainerSpec("other", "/pk")
CONTAINERS = {FEED.name: FEED, OTHER.name: OTHER}


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[SqliteDocumentStore]:
    opened = SqliteDocumentStore(tmp_path, CONTAINERS, clock=clock)
    yield opened
    opened.close()


def test_waiting_returns_at_once_when_a_change_is_already_there(
    store: SqliteDocumentStore,
) -> None:
    store.create(FEED.name, {"id": "a", "pk": "p"})

    assert store.wait_for_changes(FEED.name, 0, timeout=30) is True


def test_waiting_gives_up_after_the_timeout_without_a_change(store: SqliteDocumentStore) -> None:
    store.create(OTHER.name, {"id": "a", "pk": "p"})

    assert store.read_changes(FEED.name, 0) == []
    assert store.wait_for_changes(FEED.name, 0, timeout=0.2) is False


def test_a_write_in_this_process_wakes_a_waiter_without_polling(
    store: SqliteDocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_reader, "RECHECK_SECONDS", 60.0)
    outcome: list[bool] = []
    waiter = threading.Thread(
        target=lambda: outcome.append(store.wait_for_changes(FEED.name, 0, timeout=30))
    )
    started = time.monotonic()
    waiter.start()
    time.sleep(0.1)
    store.create(FEED.name, {"id": "a", "pk": "p"})
    waiter.join(timeout=30)

    assert outcome == [True]
    assert time.monotonic() - started < 20  # woken by the write, not by the 30 s timeout


def test_a_write_to_another_container_does_not_satisfy_a_waiter(
    store: SqliteDocumentStore,
) -> None:
    outcome: list[bool] = []
    waiter = threading.Thread(
        target=lambda: outcome.append(store.wait_for_changes(FEED.name, 0, timeout=0.5))
    )
    waiter.start()
    store.create(OTHER.name, {"id": "a", "pk": "p"})
    waiter.join()

    assert outcome == [False]


def test_purge_deletes_expired_items_only_and_counts_them(
    store: SqliteDocumentStore, clock: ManualClock
) -> None:
    store.create(FEED.name, {"id": "short", "pk": "p", "ttl": 10})
    store.create(FEED.name, {"id": "long", "pk": "p", "ttl": 100})
    store.create(FEED.name, {"id": "forever", "pk": "p"})
    store.create(OTHER.name, {"id": "ttl-off", "pk": "p", "ttl": 10})

    assert store.purge_expired() == 0
    clock.now += 50
    assert store.purge_expired() == 1
    clock.now += 100
    assert store.purge_expired() == 1

    remaining = [change.document["id"] for change in store.read_changes(FEED.name, 0)]
    assert remaining == ["forever"]
    assert store.read(OTHER.name, "p", "ttl-off")["id"] == "ttl-off"


def test_an_unexpected_failure_fails_only_its_own_write_in_a_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leader is held inside its write while three others queue behind it; one of those
    three then breaks (its clock read raises), and the other two must still commit."""
    release = threading.Event()
    calls = 0

    def clock() -> float:
        nonlocal calls
        calls += 1
        if calls == 1:
            release.wait(10)
        if calls == 3:
            raise RuntimeError("clock broke")
        return 1_000_000.0

    store = SqliteDocumentStore(tmp_path, CONTAINERS, clock=clock)
    outcomes: dict[str, str] = {}

    def create(id: str) -> None:
        try:
            store.create(OTHER.name, {"id": id, "pk": "p"})
            outcomes[id] = "stored"
        except RuntimeError:
            outcomes[id] = "failed"

    leader = threading.Thread(target=create, args=("leader",))
    leader.start()
    time.sleep(0.1)
    followers = [threading.Thread(target=create, args=(f"f{n}",)) for n in range(3)]
    for follower in followers:
        follower.start()
    time.sleep(0.2)
    release.set()
    for thread in [leader, *followers]:
        thread.join(10)

    assert outcomes["leader"] == "stored"
    follower_outcomes = sorted(outcomes[f"f{n}"] for n in range(3))
    assert follower_outcomes == ["failed", "stored", "stored"]
    stored = {change.document["id"] for change in store.read_changes(OTHER.name, 0)}
    assert stored == {id for id, outcome in outcomes.items() if outcome == "stored"}
    store.close()
