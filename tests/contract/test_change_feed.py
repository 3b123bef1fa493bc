"""The ChangeFeed contract (shared/ports.py), run against every backend of conftest.py."""

from __future__ import annotations

from collections.abc import Callable

from shared.ports import Create, Incr, Set
from tests.contract.conftest import PLAIN, TTL_ON, Store

C = PLAIN.name


def doc(id: str, pk: str = "p1", **fields: object) -> dict[str, object]:
    return {"id": id, "pk": pk, **fields}


def feed_ids(store: Store, container: str = C, after: int = 0) -> list[object]:
    return [change.document["id"] for change in store.read_changes(container, after, 1000)]


def test_the_feed_lists_writes_oldest_first_with_rising_positions(store: Store) -> None:
    for name in ("a", "b", "c"):
        store.create(C, doc(name, v=name))

    changes = store.read_changes(C, 0)

    assert [change.document["id"] for change in changes] == ["a", "b", "c"]
    positions = [change.lsn for change in changes]
    assert positions == sorted(set(positions))
    assert positions[0] > 0


def test_the_feed_holds_only_the_latest_version_of_an_item(store: Store) -> None:
    store.create(C, doc("a", v=1))
    store.create(C, doc("b"))
    store.patch(C, "p1", "a", [Set("v", 2)])
    store.upsert(C, doc("a", v=3))

    changes = store.read_changes(C, 0)

    assert [change.document["id"] for change in changes] == ["b", "a"]
    assert changes[1].document == store.read(C, "p1", "a")


def test_a_rewritten_item_reappears_after_a_consumers_position(store: Store) -> None:
    store.create(C, doc("a", v=1))
    position = store.read_changes(C, 0)[-1].lsn

    assert store.read_changes(C, position) == []
    store.patch(C, "p1", "a", [Incr("v", 1)])

    changes = store.read_changes(C, position)
    assert [(change.document["id"], change.document["v"]) for change in changes] == [("a", 2)]
    assert changes[0].lsn > position


def test_deleted_items_leave_the_feed(store: Store) -> None:
    store.create(C, doc("a"))
    store.create(C, doc("b"))
    store.delete(C, "p1", "a")

    assert feed_ids(store) == ["b"]


def test_the_feed_is_read_in_pages_of_max_items(store: Store) -> None:
    store.batch(C, "p1", [Create(doc(f"i{n:02d}")) for n in range(25)])
    seen: list[object] = []
    position = 0
    while changes := store.read_changes(C, position, max_items=10):
        assert len(changes) <= 10
        seen.extend(change.document["id"] for change in changes)
        position = changes[-1].lsn

    assert seen == [f"i{n:02d}" for n in range(25)]


def test_the_feed_spans_partitions_but_not_containers(store: Store) -> None:
    store.create(C, doc("a", "p1"))
    store.create(C, doc("b", "p2"))
    store.create(TTL_ON.name, doc("c", "p1"))

    assert feed_ids(store, C) == ["a", "b"]
    assert feed_ids(store, TTL_ON.name) == ["c"]


def test_expired_items_leave_the_feed(store: Store, time_travel: Callable[[float], None]) -> None:
    store.create(TTL_ON.name, doc("short", ttl=1))
    store.create(TTL_ON.name, doc("forever"))
    time_travel(2.5)

    assert feed_ids(store, TTL_ON.name) == ["forever"]


def test_a_consumer_that_never_ran_is_at_zero(store: Store) -> None:
    assert store.get_checkpoint(C, "history") == 0


def test_a_checkpoint_is_kept_per_consumer_and_container(store: Store) -> None:
    store.set_checkpoint(C, "history", 7)
    store.set_checkpoint(C, "relay", 3)
    store.set_checkpoint(TTL_ON.name, "history", 11)

    assert store.get_checkpoint(C, "history") == 7
    assert store.get_checkpoint(C, "relay") == 3
    assert store.get_checkpoint(TTL_ON.name, "history") == 11


def test_a_checkpoint_never_moves_backwards(store: Store) -> None:
    store.set_checkpoint(C, "history", 10)
    store.set_checkpoint(C, "history", 4)
    assert store.get_checkpoint(C, "history") == 10

    store.set_checkpoint(C, "history", 12)
    assert store.get_checkpoint(C, "history") == 12


def test_a_consumer_resuming_from_its_checkpoint_sees_each_later_change(store: Store) -> None:
    store.create(C, doc("a"))
    store.create(C, doc("b"))
    first = store.read_changes(C, store.get_checkpoint(C, "relay"))
    store.set_checkpoint(C, "relay", first[-1].lsn)
    store.create(C, doc("c"))
    store.patch(C, "p1", "a", [Set("v", 1)])

    later = store.read_changes(C, store.get_checkpoint(C, "relay"))

    assert [change.document["id"] for change in later] == ["c", "a"]
