"""The DocumentStore contract (shared/ports.py), run against every backend of conftest.py."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.ports import (
    BatchFailed,
    Condition,
    Conflict,
    Create,
    Delete,
    Incr,
    NotFound,
    OrderBy,
    Patch,
    PreconditionFailed,
    Read,
    Remove,
    Replace,
    Set,
    Upsert,
)
from tests.contract.conftest import PLAIN, TTL_DEFAULT, TTL_ON, Store

C = PLAIN.name


def doc(id: str, pk: str = "p1", **fields: object) -> dict[str, object]:
    return {"id": id, "pk": pk, **fields}


def without_system(document: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in document.items() if not k.startswith("_")}


def condition_id(value: object) -> str | None:
    """Readable test ids for conditions; the default (stable across workers) for the rest."""
    return str(value) if isinstance(value, Condition) else None


# --------------------------------------------------------------------------- create and read


def test_create_returns_the_stored_document_with_etag_and_timestamp(store: Store) -> None:
    stored = store.create(C, doc("a", name="Cats", nested={"x": 1}))

    assert without_system(stored) == doc("a", name="Cats", nested={"x": 1})
    assert isinstance(stored["_etag"], str)
    assert stored["_etag"]
    assert isinstance(stored["_ts"], int)
    assert store.read(C, "p1", "a") == stored


def test_create_of_an_existing_id_in_the_partition_conflicts(store: Store) -> None:
    store.create(C, doc("a", v=1))

    with pytest.raises(Conflict):
        store.create(C, doc("a", v=2))
    assert store.read(C, "p1", "a")["v"] == 1


def test_the_same_id_in_two_partitions_is_two_items(store: Store) -> None:
    store.create(C, doc("a", "p1", v=1))
    store.create(C, doc("a", "p2", v=2))

    assert store.read(C, "p1", "a")["v"] == 1
    assert store.read(C, "p2", "a")["v"] == 2


def test_reading_a_missing_item_raises_not_found(store: Store) -> None:
    store.create(C, doc("a", "p1"))

    with pytest.raises(NotFound):
        store.read(C, "p1", "nope")
    with pytest.raises(NotFound):
        store.read(C, "p2", "a")


def test_changing_a_returned_document_does_not_change_the_stored_one(store: Store) -> None:
    stored = store.create(C, doc("a", tags=["x"]))
    stored["tags"].append("y")

    read = store.read(C, "p1", "a")
    read["tags"].append("z")

    assert store.read(C, "p1", "a")["tags"] == ["x"]


@pytest.mark.parametrize(
    "bad",
    [
        {"pk": "p1"},
        {"id": 7, "pk": "p1"},
        {"id": None, "pk": "p1"},
        {"id": "a"},
        {"id": "a", "pk": None},
    ],
    ids=["no-id", "int-id", "null-id", "no-partition-key", "null-partition-key"],
)
def test_a_write_without_a_string_id_or_partition_key_is_a_value_error(
    store: Store, bad: dict[str, object]
) -> None:
    with pytest.raises(ValueError, match=r"."):
        store.create(C, bad)
    with pytest.raises(ValueError, match=r"."):
        store.upsert(C, bad)


# --------------------------------------------------------------------------- upsert, replace


def test_upsert_inserts_then_replaces_with_a_new_etag(store: Store) -> None:
    first = store.upsert(C, doc("a", v=1))
    second = store.upsert(C, doc("a", v=2))

    assert store.read(C, "p1", "a")["v"] == 2
    assert "v" in second
    assert first["_etag"] != second["_etag"]


def test_upsert_with_if_match_needs_the_current_etag(store: Store) -> None:
    with pytest.raises(PreconditionFailed):
        store.upsert(C, doc("a", v=1), if_match='"no-such-etag"')
    stored = store.create(C, doc("a", v=1))
    store.upsert(C, doc("a", v=2), if_match=stored["_etag"])

    with pytest.raises(PreconditionFailed):
        store.upsert(C, doc("a", v=3), if_match=stored["_etag"])
    assert store.read(C, "p1", "a")["v"] == 2


def test_replace_of_a_missing_item_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.replace(C, doc("a", v=1))


def test_replace_with_a_stale_etag_fails_and_changes_nothing(store: Store) -> None:
    stored = store.create(C, doc("a", v=1))
    replaced = store.replace(C, doc("a", v=2), if_match=stored["_etag"])

    with pytest.raises(PreconditionFailed):
        store.replace(C, doc("a", v=3), if_match=stored["_etag"])
    assert store.read(C, "p1", "a") == replaced
    assert without_system(replaced) == doc("a", v=2)


def test_replace_drops_fields_the_new_document_does_not_have(store: Store) -> None:
    store.create(C, doc("a", v=1, extra=True))
    store.replace(C, doc("a", v=2))

    assert "extra" not in store.read(C, "p1", "a")


def race_two_replaces(store: Store, item_id: str) -> dict[str, str]:
    """Two threads replace the same item with the same If-Match at the same moment."""
    etag = store.create(C, doc(item_id, writer=None))["_etag"]
    start = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def write(writer: str) -> None:
        start.wait()
        try:
            store.replace(C, doc(item_id, writer=writer), if_match=etag)
            outcomes[writer] = "won"
        except PreconditionFailed:
            outcomes[writer] = "lost"

    threads = [threading.Thread(target=write, args=(name,)) for name in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_only_one_of_two_racing_if_match_replaces_wins(store: Store) -> None:
    for round_number in range(20):
        item_id = f"race{round_number}"

        outcomes = race_two_replaces(store, item_id)

        assert sorted(outcomes.values()) == ["lost", "won"]
        winner = next(name for name, outcome in outcomes.items() if outcome == "won")
        assert store.read(C, "p1", item_id)["writer"] == winner


# --------------------------------------------------------------------------- delete


def test_delete_removes_the_item(store: Store) -> None:
    store.create(C, doc("a"))
    store.delete(C, "p1", "a")

    with pytest.raises(NotFound):
        store.read(C, "p1", "a")
    with pytest.raises(NotFound):
        store.delete(C, "p1", "a")


def test_delete_with_a_stale_etag_keeps_the_item(store: Store) -> None:
    stored = store.create(C, doc("a", v=1))
    store.replace(C, doc("a", v=2))

    with pytest.raises(PreconditionFailed):
        store.delete(C, "p1", "a", if_match=stored["_etag"])
    assert store.read(C, "p1", "a")["v"] == 2


def test_an_item_can_be_created_again_after_its_delete(store: Store) -> None:
    store.create(C, doc("a", v=1))
    store.delete(C, "p1", "a")
    store.create(C, doc("a", v=2))

    assert store.read(C, "p1", "a")["v"] == 2


# --------------------------------------------------------------------------- patch


def test_patch_sets_increments_and_removes_dotted_paths(store: Store) -> None:
    store.create(C, doc("a", seats={"free": 10, "sold": 0}, note="x", status="open"))

    patched = store.patch(
        C,
        "p1",
        "a",
        [
            Incr("seats.free", -3),
            Incr("seats.sold", 3),
            Set("status", "busy"),
            Set("seats.label", "A"),
            Remove("note"),
        ],
    )

    expected = doc("a", seats={"free": 7, "sold": 3, "label": "A"}, status="busy")
    assert without_system(patched) == expected
    assert without_system(store.read(C, "p1", "a")) == expected


def test_incr_of_a_missing_field_creates_it(store: Store) -> None:
    store.create(C, doc("a"))

    assert store.patch(C, "p1", "a", [Incr("count", 2)])["count"] == 2


def test_patch_gives_a_new_etag(store: Store) -> None:
    stored = store.create(C, doc("a", v=1))

    patched = store.patch(C, "p1", "a", [Set("v", 2)], if_match=stored["_etag"])

    assert patched["_etag"] != stored["_etag"]
    with pytest.raises(PreconditionFailed):
        store.patch(C, "p1", "a", [Set("v", 3)], if_match=stored["_etag"])
    assert store.read(C, "p1", "a")["v"] == 2


def test_patch_of_a_missing_item_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.patch(C, "p1", "missing", [Set("v", 1)])


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        (Condition("seats", ">=", 5), True),
        (Condition("seats", ">=", 6), False),
        (Condition("seats", ">", 4), True),
        (Condition("seats", "<", 5), False),
        (Condition("seats", "<=", 5), True),
        (Condition("seats", "=", 5), True),
        (Condition("seats", "!=", 5), False),
        (Condition("status", "=", "open"), True),
        (Condition("status", "!=", "closed"), True),
        (Condition("flags.live", "=", True), True),
        (Condition("flags.live", "=", False), False),
        (Condition("missing", "!=", 1), False),
        (Condition("missing", ">=", 0), False),
    ],
    ids=condition_id,
)
def test_a_patch_applies_only_when_its_condition_holds(
    store: Store, condition: Condition, holds: bool
) -> None:
    store.create(C, doc("a", seats=5, status="open", flags={"live": True}))

    if holds:
        assert store.patch(C, "p1", "a", [Set("touched", True)], [condition])["touched"] is True
    else:
        with pytest.raises(PreconditionFailed):
            store.patch(C, "p1", "a", [Set("touched", True)], [condition])
        assert "touched" not in store.read(C, "p1", "a")


def test_every_condition_of_a_patch_must_hold(store: Store) -> None:
    store.create(C, doc("a", seats=5, status="open"))

    with pytest.raises(PreconditionFailed):
        store.patch(
            C,
            "p1",
            "a",
            [Incr("seats", -1)],
            [Condition("seats", ">=", 1), Condition("status", "=", "closed")],
        )
    assert store.read(C, "p1", "a")["seats"] == 5


# --------------------------------------------------------------------------- batch


M = "musicals"


def reserve(musical_id: str, reservation_id: str, seats: int) -> list:
    """The reservation-shaped batch of POST /reservations."""
    return [
        Patch(
            musical_id,
            [Incr("availableSeats", -seats)],
            [Condition("availableSeats", ">=", seats)],
        ),
        Create({"id": reservation_id, "musicalId": musical_id, "type": "reservation"}),
        Create({"id": f"evt-{reservation_id}", "musicalId": musical_id, "type": "event"}),
    ]


def test_a_reservation_batch_commits_all_three_operations(store: Store) -> None:
    store.create(M, {"id": "m1", "musicalId": "m1", "availableSeats": 10})

    results = store.batch(M, "m1", reserve("m1", "r1", 4))

    assert [r["id"] for r in results] == ["m1", "r1", "evt-r1"]
    assert results[0]["availableSeats"] == 6
    assert store.read(M, "m1", "m1")["availableSeats"] == 6
    assert store.read(M, "m1", "r1")["type"] == "reservation"
    assert store.read(M, "m1", "evt-r1")["type"] == "event"


def test_a_batch_rolls_back_the_patch_when_a_later_create_conflicts(store: Store) -> None:
    store.create(M, {"id": "m1", "musicalId": "m1", "availableSeats": 10})
    store.create(M, {"id": "evt-r1", "musicalId": "m1", "type": "event"})

    with pytest.raises(BatchFailed) as failure:
        store.batch(M, "m1", reserve("m1", "r1", 4))

    assert failure.value.index == 2
    assert isinstance(failure.value.cause, Conflict)
    assert store.read(M, "m1", "m1")["availableSeats"] == 10
    with pytest.raises(NotFound):
        store.read(M, "m1", "r1")


def test_a_batch_whose_condition_fails_reports_a_precondition_at_its_index(store: Store) -> None:
    store.create(M, {"id": "m1", "musicalId": "m1", "availableSeats": 3})

    with pytest.raises(BatchFailed) as failure:
        store.batch(M, "m1", reserve("m1", "r1", 4))

    assert failure.value.index == 0
    assert isinstance(failure.value.cause, PreconditionFailed)
    with pytest.raises(NotFound):
        store.read(M, "m1", "r1")


def test_a_batch_reports_a_missing_item_as_not_found(store: Store) -> None:
    store.create(C, doc("a"))

    with pytest.raises(BatchFailed) as failure:
        store.batch(C, "p1", [Upsert(doc("b", v=1)), Read("missing")])

    assert failure.value.index == 1
    assert isinstance(failure.value.cause, NotFound)
    with pytest.raises(NotFound):
        store.read(C, "p1", "b")


def test_a_batch_returns_each_operations_result(store: Store) -> None:
    old = store.create(C, doc("old", v=0))
    store.create(C, doc("gone"))

    results = store.batch(
        C,
        "p1",
        [
            Create(doc("new", v=1)),
            Upsert(doc("up", v=2)),
            Replace(doc("old", v=3), if_match=old["_etag"]),
            Patch("new", [Incr("v", 10)]),
            Delete("gone"),
            Read("old"),
        ],
    )

    assert [r["v"] for r in results[:4]] == [1, 2, 3, 11]
    assert results[4] is None
    assert results[5] == results[2]
    assert store.read(C, "p1", "new")["v"] == 11
    with pytest.raises(NotFound):
        store.read(C, "p1", "gone")


def test_a_batch_sees_its_own_earlier_writes(store: Store) -> None:
    results = store.batch(C, "p1", [Create(doc("a", v=1)), Patch("a", [Incr("v", 1)]), Read("a")])

    assert results[2]["v"] == 2


def test_a_batch_takes_at_most_a_hundred_operations(store: Store) -> None:
    hundred = [Create(doc(f"i{n}")) for n in range(100)]
    assert len(store.batch(C, "p1", hundred)) == 100

    with pytest.raises(ValueError, match="100"):
        store.batch(C, "p1", [Create(doc(f"j{n}")) for n in range(101)])
    with pytest.raises(NotFound):
        store.read(C, "p1", "j0")


def test_a_batch_document_outside_the_batch_partition_is_a_value_error(store: Store) -> None:
    with pytest.raises(ValueError, match="partition"):
        store.batch(C, "p1", [Create(doc("a", "p1")), Create(doc("b", "p2"))])
    with pytest.raises(NotFound):
        store.read(C, "p1", "a")


def test_fifty_racing_reservations_never_oversell(store: Store) -> None:
    store.create(M, {"id": "m1", "musicalId": "m1", "availableSeats": 30})
    start = threading.Barrier(50)

    def attempt(n: int) -> str:
        start.wait()
        try:
            store.batch(M, "m1", reserve("m1", f"r{n}", 1))
        except BatchFailed as failure:
            return type(failure.cause).__name__
        return "reserved"

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(attempt, range(50)))

    assert outcomes.count("reserved") == 30
    assert outcomes.count("PreconditionFailed") == 20
    assert store.read(M, "m1", "m1")["availableSeats"] == 0
    reservations = store.query(M, "m1", [Condition("type", "=", "reservation")], limit=100)
    assert len(reservations.items) == 30


def test_racing_reservations_of_mixed_sizes_hold_exactly_what_succeeded(store: Store) -> None:
    store.create(M, {"id": "m1", "musicalId": "m1", "availableSeats": 50})
    start = threading.Barrier(50)

    def attempt(n: int) -> int:
        seats = n % 4 + 1
        start.wait()
        try:
            store.batch(M, "m1", reserve("m1", f"r{n}", seats))
        except BatchFailed:
            return 0
        return seats

    with ThreadPoolExecutor(max_workers=50) as pool:
        held = sum(pool.map(attempt, range(50)))

    available = store.read(M, "m1", "m1")["availableSeats"]
    assert available >= 0
    assert available == 50 - held
    assert held > 40  # with 1..4-seat requests, nobody is refused while 4 seats remain


# --------------------------------------------------------------------------- query


def seed(store: Store, count: int, pk: str = "p1") -> None:
    for n in range(count):
        store.create(C, doc(f"i{n:02d}", pk, n=n, group=n % 3, meta={"rank": count - n}))


def ids(items: list[dict[str, object]]) -> list[object]:
    return [item["id"] for item in items]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (Condition("n", "=", 3), {"i03"}),
        (Condition("n", "!=", 3), {"i00", "i01", "i02", "i04", "i05"}),
        (Condition("n", "<", 2), {"i00", "i01"}),
        (Condition("n", "<=", 2), {"i00", "i01", "i02"}),
        (Condition("n", ">", 3), {"i04", "i05"}),
        (Condition("n", ">=", 4), {"i04", "i05"}),
        (Condition("meta.rank", "=", 6), {"i00"}),
        (Condition("id", "=", "i05"), {"i05"}),
        (Condition("missing", "!=", 0), set()),
    ],
    ids=condition_id,
)
def test_query_filters_with_each_operator(
    store: Store, condition: Condition, expected: set[str]
) -> None:
    seed(store, 6)

    assert set(ids(store.query(C, "p1", [condition]).items)) == expected


def test_query_combines_conditions_with_and(store: Store) -> None:
    seed(store, 9)

    page = store.query(C, "p1", [Condition("group", "=", 0), Condition("n", ">", 0)])

    assert set(ids(page.items)) == {"i03", "i06"}


def test_a_filter_on_true_and_one_on_1_each_find_only_their_own_type(store: Store) -> None:
    """True == 1 in Python: a store that reuses what it built for one filter must not take
    the other for it."""
    store.create(C, doc("flag", on=True))
    store.create(C, doc("number", on=1))

    on_true = store.query(C, "p1", [Condition("on", "=", True)])
    on_one = store.query(C, "p1", [Condition("on", "=", 1)])
    on_true_again = store.query(C, "p1", [Condition("on", "=", True)])

    assert (ids(on_true.items), ids(on_one.items)) == (["flag"], ["number"])
    assert ids(on_true_again.items) == ["flag"]


def test_query_sees_only_its_partition(store: Store) -> None:
    seed(store, 3, "p1")
    seed(store, 4, "p2")

    assert len(store.query(C, "p1").items) == 3
    assert len(store.query(C, "p2").items) == 4
    assert store.query(C, "p3").items == []


def test_query_orders_by_a_dotted_path_in_either_direction(store: Store) -> None:
    seed(store, 5)

    ascending = store.query(C, "p1", order_by=[OrderBy("meta.rank")])
    descending = store.query(C, "p1", order_by=[OrderBy("n", descending=True)])

    assert ids(ascending.items) == ["i04", "i03", "i02", "i01", "i00"]
    assert ids(descending.items) == ["i04", "i03", "i02", "i01", "i00"]


def test_query_breaks_ties_by_id(store: Store) -> None:
    seed(store, 6)

    page = store.query(C, "p1", order_by=[OrderBy("group", descending=True)])

    assert ids(page.items) == ["i02", "i05", "i01", "i04", "i00", "i03"]


def test_pages_cover_every_item_once_and_the_last_has_no_token(store: Store) -> None:
    seed(store, 23)
    order = [OrderBy("group"), OrderBy("n", descending=True)]
    seen: list[object] = []
    token = None
    pages = 0
    while True:
        page = store.query(C, "p1", order_by=order, limit=5, continuation=token)
        seen.extend(ids(page.items))
        pages += 1
        token = page.continuation
        if token is None:
            break

    everything = store.query(C, "p1", order_by=order, limit=100)
    assert pages == 5
    assert seen == ids(everything.items)
    assert len(set(seen)) == 23


def test_a_full_last_page_still_ends_with_no_token(store: Store) -> None:
    seed(store, 4)

    first = store.query(C, "p1", limit=2)
    second = store.query(C, "p1", limit=2, continuation=first.continuation)

    assert first.continuation is not None
    assert len(second.items) == 2
    assert second.continuation is None


def test_paging_is_stable_when_items_are_inserted_between_pages(store: Store) -> None:
    seed(store, 10)
    order = [OrderBy("n")]
    first = store.query(C, "p1", order_by=order, limit=4)
    store.create(C, doc("early", n=-1))
    store.create(C, doc("late", n=100))

    rest: list[object] = []
    token = first.continuation
    while token is not None:
        page = store.query(C, "p1", order_by=order, limit=4, continuation=token)
        rest.extend(ids(page.items))
        token = page.continuation

    assert ids(first.items) == ["i00", "i01", "i02", "i03"]
    assert rest == ["i04", "i05", "i06", "i07", "i08", "i09", "late"]


def test_query_items_carry_system_properties(store: Store) -> None:
    stored = store.create(C, doc("a"))

    assert store.query(C, "p1").items == [stored]


# --------------------------------------------------------------------------- TTL


def test_item_ttl_is_ignored_when_the_container_has_ttl_off(
    store: Store, time_travel: Callable[[float], None]
) -> None:
    store.create(PLAIN.name, doc("a", ttl=1))
    time_travel(2.5)

    assert store.read(PLAIN.name, "p1", "a")["id"] == "a"


def test_an_item_with_its_own_ttl_expires_and_vanishes_everywhere(
    store: Store, time_travel: Callable[[float], None]
) -> None:
    container = TTL_ON.name
    store.create(container, doc("short", ttl=1))
    store.create(container, doc("forever"))
    time_travel(2.5)

    with pytest.raises(NotFound):
        store.read(container, "p1", "short")
    assert ids(store.query(container, "p1").items) == ["forever"]
    with pytest.raises(BatchFailed) as failure:
        store.batch(container, "p1", [Read("short")])
    assert isinstance(failure.value.cause, NotFound)
    with pytest.raises(NotFound):
        store.patch(container, "p1", "short", [Set("v", 1)])
    with pytest.raises(NotFound):
        store.replace(container, doc("short"))


def test_an_expired_id_can_be_created_again(
    store: Store, time_travel: Callable[[float], None]
) -> None:
    store.create(TTL_ON.name, doc("a", ttl=1, v=1))
    time_travel(2.5)

    store.create(TTL_ON.name, doc("a", v=2))

    assert store.read(TTL_ON.name, "p1", "a")["v"] == 2


def test_the_container_default_ttl_applies_unless_the_item_overrides_it(
    store: Store, time_travel: Callable[[float], None]
) -> None:
    container = TTL_DEFAULT.name
    store.create(container, doc("default"))
    store.create(container, doc("forever", ttl=-1))
    store.create(container, doc("longer", ttl=3600))
    time_travel(2.5)

    assert sorted(ids(store.query(container, "p1").items)) == ["forever", "longer"]


def test_a_write_restarts_the_ttl(store: Store, time_travel: Callable[[float], None]) -> None:
    container = TTL_ON.name
    store.create(container, doc("a", ttl=3))
    time_travel(2)
    store.patch(container, "p1", "a", [Set("v", 1)])
    time_travel(2)

    assert store.read(container, "p1", "a")["v"] == 1
