"""How the SQLite store groups queued writes: at most `max_group` per commit, and background
(low-priority) writes giving way to requests' (high-priority) ones without being starved."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from devhost.embedded.group_commit import Priority
from devhost.embedded.sqlite_store import SqliteDocumentStore, Write
from shared.ports import Create
from shared.topology import MUSICALS
from tests.support.low_priority import low_priority_policy

M = MUSICALS.name


def doc(id: str) -> dict[str, object]:
    return {"id": id, "musicalId": id}


def test_a_group_commits_at_most_max_group_writes_and_the_rest_follow(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path, max_group=4)
    committed_after_each_group: list[int] = []
    store.add_commit_listener(
        lambda: committed_after_each_group.append(len(store.read_changes(M, 0)))
    )

    async def scenario() -> None:
        await asyncio.gather(*(store.submit(Write(M, Create(doc(f"m{n}")))) for n in range(10)))

    asyncio.run(scenario())
    stored = [change.document["id"] for change in store.read_changes(M, 0)]
    store.close()

    assert committed_after_each_group == [4, 8, 10]
    assert stored == [f"m{n}" for n in range(10)]


def test_while_requests_write_background_writes_trickle_then_flow_once_they_pause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    low_priority_policy(monkeypatch, trickle_seconds=0.1, busy_writes=5, busy_seconds=0.2)
    store = SqliteDocumentStore(tmp_path)
    committed_at: dict[str, float] = {}

    async def write(id: str, priority: Priority) -> None:
        await store.submit(Write(M, Create(doc(id))), priority)
        committed_at[id] = time.monotonic()

    async def requests_for(seconds: float) -> None:
        deadline, n = time.monotonic() + seconds, 0
        while time.monotonic() < deadline:
            await write(f"request-{n}", "high")
            n += 1
            await asyncio.sleep(0.005)

    async def scenario() -> float:
        requests = asyncio.ensure_future(requests_for(0.6))
        await asyncio.sleep(0.1)  # requests are writing at ~150/s: busy
        background = [asyncio.ensure_future(write(f"bg-{n}", "low")) for n in range(6)]
        await requests
        requests_ended = time.monotonic()
        await asyncio.gather(*background)
        return requests_ended

    requests_ended = asyncio.run(scenario())
    store.close()

    during = sorted(
        t for id, t in committed_at.items() if id.startswith("bg-") and t < requests_ended
    )
    after = [t for id, t in committed_at.items() if id.startswith("bg-") and t >= requests_ended]
    assert 3 <= len(during) <= 6  # one per trickle interval over ~0.5 s: about five
    assert all(b - a >= 0.05 for a, b in itertools.pairwise(during))  # not all at once
    assert all(t - requests_ended < 1.0 for t in after)  # the rest flowed once requests paused


def test_background_writes_alone_are_not_held_back(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path)

    async def scenario() -> float:
        started = time.monotonic()
        await asyncio.gather(
            *(store.submit(Write(M, Create(doc(f"bg-{n}"))), "low") for n in range(20))
        )
        return time.monotonic() - started

    elapsed = asyncio.run(scenario())
    store.close()

    assert elapsed < 1.0  # with no request writing, nothing waits for a trickle


def test_a_request_now_and_then_does_not_hold_background_writes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One request's write starts a saga of background writes: they must not trickle."""
    low_priority_policy(monkeypatch, trickle_seconds=0.1, busy_writes=5, busy_seconds=0.2)
    store = SqliteDocumentStore(tmp_path)

    async def scenario() -> float:
        for n in range(4):  # ten requests a second: not busy
            await store.submit(Write(M, Create(doc(f"request-{n}"))), "high")
            await asyncio.sleep(0.1)
        await store.submit(Write(M, Create(doc("request-last"))), "high")
        started = time.monotonic()
        await asyncio.gather(
            *(store.submit(Write(M, Create(doc(f"bg-{n}"))), "low") for n in range(6))
        )
        return time.monotonic() - started

    elapsed = asyncio.run(scenario())
    store.close()

    assert elapsed < 0.25  # trickled, six writes would take 0.5 s or more
