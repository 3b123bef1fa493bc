"""The SQLite store's awaited writes: what only the embedded adapter has to get right."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from devhost.embedded.sqlite_store import SqliteDocumentStore
from shared.ports import BatchFailed, Conflict, Create, Incr, Patch
from shared.topology import MUSICALS


def musical(id: str) -> dict[str, object]:
    return {"id": id, "musicalId": id, "type": "musical", "availableSeats": 1}


def test_a_write_still_queued_when_the_store_closes_fails_instead_of_hanging(
    tmp_path: Path,
) -> None:
    store = SqliteDocumentStore(tmp_path)

    async def scenario() -> None:
        queued = asyncio.ensure_future(store.create_async(MUSICALS.name, musical("m1")))
        await asyncio.sleep(0)  # the write is queued; the loop has not led its group yet
        store.close()
        with pytest.raises(RuntimeError, match="closed"):
            await queued

    asyncio.run(scenario())


def test_awaited_writes_queued_behind_a_thread_leader_are_handed_back_to_their_loop(
    tmp_path: Path,
) -> None:
    """While a thread leads a slow group, the loop's writes queue; they must not be stranded
    when that leader steps down with no other thread waiting to lead."""
    leading = threading.Event()
    release = threading.Event()

    def clock() -> float:
        """Read inside every write: it holds the thread's write (and its group) open."""
        if threading.current_thread().name == "slow-leader":
            leading.set()
            release.wait(timeout=10)
        return time.time()

    store = SqliteDocumentStore(tmp_path, clock=clock)
    leader = threading.Thread(
        target=store.create, args=(MUSICALS.name, musical("first")), name="slow-leader"
    )
    leader.start()
    assert leading.wait(timeout=10)

    async def scenario() -> list[dict[str, object]]:
        writes = [store.create_async(MUSICALS.name, musical(f"m{n}")) for n in range(5)]
        pending = asyncio.ensure_future(asyncio.gather(*writes))
        await asyncio.sleep(0.05)
        assert not pending.done()  # queued behind the thread's group
        release.set()
        return await asyncio.wait_for(pending, timeout=10)

    try:
        created = asyncio.run(scenario())
    finally:
        release.set()
        leader.join()
    assert sorted(document["id"] for document in created) == [f"m{n}" for n in range(5)]
    assert store.read(MUSICALS.name, "m4", "m4")["availableSeats"] == 1
    store.close()


def test_failures_inside_one_group_undo_only_their_own_changes(tmp_path: Path) -> None:
    """Writes queued in one loop iteration commit as one group. A batch failing at its second
    operation must undo its first; a single write failing must change nothing; the rest of the
    group commits."""
    store = SqliteDocumentStore(tmp_path)
    store.create(MUSICALS.name, musical("m1"))
    take_seat = Patch("m1", [Incr("availableSeats", -1)])

    async def scenario() -> list[object]:
        return await asyncio.gather(
            store.create_async(MUSICALS.name, musical("m2")),
            store.batch_async(MUSICALS.name, "m1", [take_seat, Create(musical("m1"))]),
            store.create_async(MUSICALS.name, musical("m1")),
            store.batch_async(MUSICALS.name, "m1", [take_seat]),
            store.create_async(MUSICALS.name, musical("m3")),
            return_exceptions=True,
        )

    outcomes = asyncio.run(scenario())
    commits = store._commits  # the point is that the five shared one
    store.close()

    assert isinstance(outcomes[1], BatchFailed)
    assert outcomes[1].index == 1
    assert isinstance(outcomes[2], Conflict)
    assert [type(outcome) for outcome in (outcomes[0], outcomes[3], outcomes[4])] == [
        dict,
        list,
        dict,
    ]
    reopened = SqliteDocumentStore(tmp_path)
    assert reopened.read(MUSICALS.name, "m1", "m1")["availableSeats"] == 0
    assert {reopened.read(MUSICALS.name, id, id)["id"] for id in ("m2", "m3")} == {"m2", "m3"}
    reopened.close()
    assert commits == 2  # the setup's create, then the five writes together


def test_reading_many_items_costs_the_same_however_many_others_their_container_holds(
    tmp_path: Path,
) -> None:
    """Each key is one search of the primary index: the catalog's musicals are read as fast
    beside 2,000 reservations as beside none (SQLite's virtual-machine steps, counted)."""
    store = SqliteDocumentStore(tmp_path)
    keys = [(f"m{n}", f"m{n}") for n in range(5)]
    for partition, _ in keys:
        store.create(MUSICALS.name, musical(partition))
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    def steps_to_read_many() -> int:
        """On a store opened for it: none of the texts is known yet (ProjectionCache)."""
        nonlocal steps
        reader = SqliteDocumentStore(tmp_path)
        with reader._reader() as connection:  # the pool's only connection: the read's own
            connection.set_progress_handler(count, 1)
        steps = 0
        try:
            asyncio.run(reader.read_many_async(MUSICALS.name, keys))
            asyncio.run(reader.read_many_json_async(MUSICALS.name, keys, ["availableSeats"]))
        finally:
            reader.close()
        return steps

    alone = steps_to_read_many()
    for n in range(20):
        store.batch(
            MUSICALS.name,
            "crowded",
            [Create({"id": f"r{n}-{m}", "musicalId": "crowded"}) for m in range(100)],
        )
    try:
        assert steps_to_read_many() == alone
    finally:
        store.close()
