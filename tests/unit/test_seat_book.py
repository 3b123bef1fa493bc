"""What a process knows of held seats for best available: re-read only when a section's counter
changed, and seats being held by its other requests counted as taken (in-memory store)."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.domain.ids import section_partition
from shared.domain.seating import Seat
from shared.handlers.seat_book import SeatBook
from shared.handlers.seated_reservations import place_seated_reservation
from shared.ports import Page
from tests.support.handler_deps import seated_deps
from tests.unit import test_seated_reservations as seated
from tests.unit.test_seated_reservations import ALICE, BOB, best, place, seats

# The seated tests' fixtures: a three-section hall (A VIP, B and C R), one performance.
directory = seated.directory
performance_id = seated.performance_id


class CountingQueries:
    def __init__(self, store) -> None:
        self._store = store
        self.queries: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def query_async(self, container: str, partition_key: str, *args: Any, **kw: Any) -> Page:
        self.queries.append(partition_key)
        return await self._store.query_async(container, partition_key, *args, **kw)


def test_held_seats_are_read_again_only_for_a_section_whose_counter_changed(
    store,
    clock,
    directory,
    performance_id,
):
    book, counting = SeatBook(), CountingQueries(store)
    asyncio.run(book.taken(performance_id, ["B", "C"], counting))
    place(store, clock, directory, seats(performance_id, "C-1-1"))
    counting.queries.clear()

    taken = asyncio.run(book.taken(performance_id, ["B", "C"], counting))

    assert counting.queries == [section_partition(performance_id, "C")]
    assert {section: set(held) for section, held in taken.items()} == {
        "B": set(),
        "C": {Seat("C", 1, 1)},
    }


def test_seats_claimed_by_a_request_in_flight_count_as_taken_until_its_hold_answers(
    store,
    performance_id,
):
    book = SeatBook()
    partition = section_partition(performance_id, "B")
    claimed = [Seat("B", 1, 1), Seat("B", 1, 2)]

    with book.claiming(partition, claimed):
        during = asyncio.run(book.taken(performance_id, ["B"], store))
    after = asyncio.run(book.taken(performance_id, ["B"], store))

    assert set(during["B"]) == set(claimed)
    assert not after["B"]


class YieldingBatches:
    """The store, its batches answered after the event loop ran the other requests once: both
    requests read the seats before either holds them, as under load."""

    def __init__(self, store) -> None:
        self._store = store
        self.batches = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def batch_async(self, *args: Any, **kw: Any) -> Any:
        self.batches += 1
        await asyncio.sleep(0)
        return await self._store.batch_async(*args, **kw)


def test_concurrent_best_available_requests_of_one_process_pick_distinct_seats_first_time(
    store,
    clock,
    directory,
    performance_id,
):
    yielding = YieldingBatches(store)
    deps = seated_deps(yielding, clock, directory)

    async def both() -> list[Any]:
        return await asyncio.gather(
            *(
                place_seated_reservation(best(performance_id, 2), who, "corr", None, deps)
                for who in (ALICE, BOB)
            )
        )

    first, second = asyncio.run(both())

    assert first.reservation.seat_ids == ["B-1-1", "B-1-2"]
    assert second.reservation.seat_ids == ["B-1-3", "B-1-4"]
    assert yielding.batches == 2  # no hold lost a race and was tried again


def test_a_hold_of_this_process_is_added_to_what_it_knows_without_a_read(
    store, clock, directory, performance_id
):
    counting = CountingQueries(store)
    book = directory.seats
    asyncio.run(book.taken(performance_id, ["B", "C"], counting))
    chosen = place(counting, clock, directory, best(performance_id, 2)).reservation
    counting.queries.clear()

    taken = asyncio.run(book.taken(performance_id, ["B", "C"], counting))

    assert counting.queries == []
    assert {seat.id for seat in taken["B"]} == set(chosen.seat_ids)


def test_holds_whose_answers_come_back_out_of_order_are_known_once_the_gap_is_filled(
    store, clock, directory, performance_id
):
    counting, book = CountingQueries(store), SeatBook()
    partition = section_partition(performance_id, "B")
    asyncio.run(book.taken(performance_id, ["B"], counting))  # known at version 0
    first, second = [Seat("B", 1, 1)], [Seat("B", 1, 2)]
    for seat in (*first, *second):  # two holds land: the counter goes to version 2
        place(store, clock, directory, seats(performance_id, seat.id))

    book.add_held(partition, second, 2)  # the second answer comes back first
    book.add_held(partition, first, 1)
    counting.queries.clear()
    taken = asyncio.run(book.taken(performance_id, ["B"], counting))

    assert counting.queries == []
    assert set(taken["B"]) == {*first, *second}


def test_for_a_pick_what_is_known_may_lag_the_counter_by_the_holds_in_flight_there(
    store, clock, directory, performance_id
):
    counting, book = CountingQueries(store), SeatBook()
    partition = section_partition(performance_id, "B")
    asyncio.run(book.taken(performance_id, ["B"], counting))  # known at version 0
    in_flight = [Seat("B", 2, 1)]
    with book.claiming(partition, in_flight):
        place(store, clock, directory, seats(performance_id, "B-2-1"))  # committed, unanswered
        counting.queries.clear()
        taken = asyncio.run(book.taken(performance_id, ["B"], counting))
        listed = asyncio.run(book.held(performance_id, ["B"], counting))

    assert set(taken["B"]) == set(in_flight)  # claimed: no read needed for a pick
    assert counting.queries == [partition]  # the listing read it: it shows only what is held
    assert set(listed["B"]) == set(in_flight)
