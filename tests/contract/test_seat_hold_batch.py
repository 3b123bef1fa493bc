"""The seat-hold batch of seated reservations (shared/handlers/seated_reservations.py), run
against every store backend: a held seat is an item whose id is the seat id, so a second hold
of it conflicts inside the batch and nothing of that batch is held."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.ports import BatchFailed, Condition, Conflict, Create, Delete, Incr, NotFound, Patch
from shared.topology import PERFORMANCES
from tests.contract.conftest import Store

P = PERFORMANCES.name
SECTION = "perf-A"


def hold(reservation_id: str, seat_ids: list[str]) -> list:
    """The batch of a seated hold: the seats, the section's counter, the reservation, its event."""
    return [
        *(
            Create(
                {
                    "id": s,
                    "partitionKey": SECTION,
                    "type": "heldSeat",
                    "reservationId": reservation_id,
                }
            )
            for s in seat_ids
        ),
        Patch(
            "counter",
            [Incr("availableSeats", -len(seat_ids))],
            [Condition("availableSeats", ">=", len(seat_ids))],
        ),
        Create({"id": reservation_id, "partitionKey": SECTION, "type": "reservation"}),
        Create({"id": f"{reservation_id}.placed", "partitionKey": SECTION, "type": "event"}),
    ]


@pytest.fixture
def section(store: Store) -> Store:
    store.create(P, {"id": "counter", "partitionKey": SECTION, "availableSeats": 10})
    return store


def held(store: Store) -> set[str]:
    page = store.query(P, SECTION, [Condition("type", "=", "heldSeat")], limit=100)
    return {item["id"] for item in page.items}


def test_a_seat_hold_commits_the_seats_the_counter_the_reservation_and_its_event(
    section: Store,
) -> None:
    section.batch(P, SECTION, hold("r1", ["A-1-1", "A-1-2"]))

    assert held(section) == {"A-1-1", "A-1-2"}
    assert section.read(P, SECTION, "counter")["availableSeats"] == 8
    assert section.read(P, SECTION, "r1.placed")["type"] == "event"


def test_a_conflict_on_a_held_seat_holds_nothing(section: Store) -> None:
    section.batch(P, SECTION, hold("r1", ["A-1-2"]))

    with pytest.raises(BatchFailed) as failure:
        section.batch(P, SECTION, hold("r2", ["A-1-1", "A-1-2", "A-1-3"]))

    assert failure.value.index == 1
    assert isinstance(failure.value.cause, Conflict)
    assert held(section) == {"A-1-2"}
    assert section.read(P, SECTION, "counter")["availableSeats"] == 9
    with pytest.raises(NotFound):
        section.read(P, SECTION, "r2")
    with pytest.raises(NotFound):
        section.read(P, SECTION, "r2.placed")


def test_seats_given_back_in_one_batch_can_be_held_again(section: Store) -> None:
    section.batch(P, SECTION, hold("r1", ["A-1-1", "A-1-2"]))

    section.batch(
        P,
        SECTION,
        [Patch("counter", [Incr("availableSeats", 2)]), Delete("A-1-1"), Delete("A-1-2")],
    )
    section.batch(P, SECTION, hold("r2", ["A-1-2"]))

    assert held(section) == {"A-1-2"}
    assert section.read(P, SECTION, "A-1-2")["reservationId"] == "r2"
    assert section.read(P, SECTION, "counter")["availableSeats"] == 9


def test_fifty_racing_holds_of_one_seat_are_won_by_exactly_one(section: Store) -> None:
    start = threading.Barrier(50)

    def attempt(n: int) -> str:
        start.wait()
        try:
            section.batch(P, SECTION, hold(f"r{n}", [f"A-1-{1 + n % 2}", "A-2-1"]))
        except BatchFailed as failure:
            return type(failure.cause).__name__
        return "held"

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(attempt, range(50)))

    assert outcomes.count("held") == 1
    assert outcomes.count("Conflict") == 49
    assert section.read(P, SECTION, "counter")["availableSeats"] == 8
    assert len(held(section)) == 2
