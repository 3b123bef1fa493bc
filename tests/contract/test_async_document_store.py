"""The AsyncDocumentStore contract: the awaited operations keep the blocking ones' semantics,
on every backend of conftest.py, including when many are in flight on one event loop."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.ports import BatchFailed, Condition, Conflict, NotFound, OrderBy, PreconditionFailed
from tests.contract.conftest import PLAIN, Store
from tests.contract.test_document_store import M, doc, ids, reserve, seed, without_system

C = PLAIN.name


def test_awaited_writes_and_reads_are_the_blocking_ones(store: Store) -> None:
    async def scenario() -> None:
        created = await store.create_async(C, doc("a", v=1))
        assert without_system(created) == doc("a", v=1)
        assert await store.read_async(C, "p1", "a") == store.read(C, "p1", "a") == created

        replaced = await store.replace_async(C, doc("a", v=2), if_match=created["_etag"])
        assert replaced["v"] == 2
        assert replaced["_etag"] != created["_etag"]

        await store.delete_async(C, "p1", "a", if_match=replaced["_etag"])
        assert store.query(C, "p1").items == []

    asyncio.run(scenario())


def test_awaited_writes_raise_the_blocking_ones_errors_and_change_nothing(store: Store) -> None:
    stored = store.create(C, doc("a", v=1))

    async def scenario() -> None:
        with pytest.raises(Conflict):
            await store.create_async(C, doc("a", v=9))
        with pytest.raises(PreconditionFailed):
            await store.replace_async(C, doc("a", v=9), if_match='"stale"')
        with pytest.raises(NotFound):
            await store.replace_async(C, doc("missing", v=9))
        with pytest.raises(PreconditionFailed):
            await store.delete_async(C, "p1", "a", if_match='"stale"')
        with pytest.raises(NotFound):
            await store.delete_async(C, "p1", "missing")

    asyncio.run(scenario())
    assert store.read(C, "p1", "a") == stored


def test_an_awaited_batch_commits_all_or_nothing(store: Store) -> None:
    store.create(M, {"id": "m1", "musicalId": "m1", "availableSeats": 10})
    store.create(M, {"id": "evt-r2", "musicalId": "m1", "type": "event"})

    async def scenario() -> None:
        results = await store.batch_async(M, "m1", reserve("m1", "r1", 4))
        assert [r["id"] for r in results] == ["m1", "r1", "evt-r1"]
        with pytest.raises(BatchFailed) as failure:
            await store.batch_async(M, "m1", reserve("m1", "r2", 4))
        assert failure.value.index == 2
        assert isinstance(failure.value.cause, Conflict)

    asyncio.run(scenario())
    assert store.read(M, "m1", "m1")["availableSeats"] == 6
    with pytest.raises(NotFound):
        store.read(M, "m1", "r2")


def test_sixty_reservations_in_flight_on_one_loop_never_oversell(store: Store) -> None:
    store.create(M, {"id": "m1", "musicalId": "m1", "availableSeats": 25})

    async def attempt(n: int) -> str:
        try:
            await store.batch_async(M, "m1", reserve("m1", f"r{n}", 1))
        except BatchFailed as failure:
            return type(failure.cause).__name__
        return "reserved"

    async def scenario() -> list[str]:
        return await asyncio.gather(*(attempt(n) for n in range(60)))

    outcomes = asyncio.run(scenario())

    assert outcomes.count("reserved") == 25
    assert outcomes.count("PreconditionFailed") == 35
    assert store.read(M, "m1", "m1")["availableSeats"] == 0


def test_loop_and_thread_writers_share_the_store_and_none_is_left_waiting(store: Store) -> None:
    """Blocking writers in threads and awaited ones on a loop interleave; every write lands."""
    start = threading.Barrier(5)

    def write_from_thread(worker: int) -> None:
        start.wait()
        for n in range(40):
            store.create(C, doc(f"t{worker}-{n}"))

    async def write_from_loop() -> None:
        await asyncio.to_thread(start.wait)
        for round_ in range(8):
            await asyncio.gather(*(store.create_async(C, doc(f"l{round_}-{n}")) for n in range(20)))

    with ThreadPoolExecutor(max_workers=4) as pool:
        threads = [pool.submit(write_from_thread, worker) for worker in range(4)]
        asyncio.run(asyncio.wait_for(write_from_loop(), timeout=60))
        for thread in threads:
            thread.result(timeout=60)

    page = store.query(C, "p1", limit=1000)
    assert len(page.items) == 4 * 40 + 8 * 20


def test_an_awaited_query_answers_the_blocking_ones_pages(store: Store) -> None:
    seed(store, 7)
    seed(store, 2, "p2")
    where = [Condition("group", "!=", 1)]
    order = [OrderBy("n", descending=True)]

    async def scenario() -> list[list[object]]:
        first = await store.query_async(C, "p1", where, order, limit=3)
        second = await store.query_async(C, "p1", where, order, 3, first.continuation)
        assert second.continuation is None
        return [ids(first.items), ids(second.items)]

    pages = asyncio.run(scenario())

    assert pages == [["i06", "i05", "i03"], ["i02", "i00"]]
    assert pages[0] == ids(store.query(C, "p1", where, order, limit=3).items)


def test_an_awaited_query_refuses_a_token_it_never_issued(store: Store) -> None:
    seed(store, 2)

    async def scenario() -> None:
        await store.query_async(C, "p1", continuation="not-a-token")

    with pytest.raises(ValueError, match=r"."):
        asyncio.run(scenario())


def test_many_items_are_read_at_once_in_the_order_asked_and_missing_ones_left_out(
    store: Store,
) -> None:
    a = store.create(C, doc("a", v=1))
    b = store.create(C, doc("b", "p2", v=2))
    store.create(C, doc("c", v=3))

    async def scenario() -> list[list[dict[str, object]]]:
        return [
            await store.read_many_async(C, [("p2", "b"), ("p1", "missing"), ("p1", "a")]),
            await store.read_many_async(C, [("p1", "b")]),  # b lives in p2
            await store.read_many_async(C, []),
        ]

    assert asyncio.run(scenario()) == [[b, a], [], []]


def test_a_json_query_gives_each_item_as_the_text_of_the_fields_asked(store: Store) -> None:
    store.create(C, doc("a", n=1, flag=True, tags=["x", {"y": None}], name="Évita", meta={"k": 2}))
    store.create(C, doc("b", n=2, flag=False, name="b"))
    store.create(C, doc("c", "p2", n=3))
    fields = ["name", "n", "flag", "tags", "missing"]

    async def scenario() -> list[str]:
        first = await store.query_json_async(C, "p1", fields, order_by=[OrderBy("n")], limit=1)
        rest = await store.query_json_async(
            C, "p1", fields, order_by=[OrderBy("n")], limit=1, continuation=first.continuation
        )
        assert rest.continuation is None
        return first.items + rest.items

    texts = asyncio.run(scenario())

    assert [json.loads(text) for text in texts] == [
        {"name": "Évita", "n": 1, "flag": True, "tags": ["x", {"y": None}], "missing": None},
        {"name": "b", "n": 2, "flag": False, "tags": None, "missing": None},
    ]
    assert [list(json.loads(text)) for text in texts] == [fields, fields]


def test_many_items_read_at_once_as_json_give_the_fields_asked_in_the_order_asked(
    store: Store,
) -> None:
    store.create(C, doc("a", n=1, flag=True, tags=["x", {"y": None}], name="Évita"))
    store.create(C, doc("b", "p2", n=2, name="b"))
    fields = ["name", "n", "flag", "tags", "missing"]

    async def scenario() -> list[list[str]]:
        return [
            await store.read_many_json_async(C, [("p2", "b"), ("p1", "a")], fields),
            await store.read_many_json_async(C, [], fields),
        ]

    found, none = asyncio.run(scenario())

    assert [json.loads(text) for text in found] == [
        {"name": "b", "n": 2, "flag": None, "tags": None, "missing": None},
        {"name": "Évita", "n": 1, "flag": True, "tags": ["x", {"y": None}], "missing": None},
    ]
    assert [list(json.loads(text)) for text in found] == [fields, fields]
    assert none == []


def test_many_items_read_at_once_as_json_leave_missing_ones_out(store: Store) -> None:
    store.create(C, doc("a", n=1))
    store.create(C, doc("b", "p2", n=2))
    keys = [("p1", "missing"), ("p1", "a"), ("p1", "b")]  # b lives in p2

    texts = asyncio.run(store.read_many_json_async(C, keys, ["n"]))

    assert texts == ['{"n":1}']
