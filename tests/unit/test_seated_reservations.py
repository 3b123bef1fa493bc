"""Seated reservations as use cases, on the in-memory store: holding seats, best available
under a lost race, the cap per performance, cancelling with fees, payment outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.domain.caller import Caller
from shared.domain.commands import PlaceReservation
from shared.domain.errors import NotEnoughSeats, NotFoundError, SeatLimitReached
from shared.domain.events import Event, EventType, PaymentFacts
from shared.domain.ids import seated_partition_of
from shared.domain.models import Musical, ReservationStatus
from shared.domain.performances import SeatAllowance
from shared.domain.seating_commands import (
    RegisterSeatedMusical,
    ReserveBestAvailable,
    ReserveSeats,
)
from shared.domain.seating_errors import InvalidSeatRequest, SeatsTaken, TooLateToCancel
from shared.handlers.musicals import MusicalDeps, get_musical, list_musicals
from shared.handlers.performances import (
    PerformanceDirectory,
    get_performance,
    register_seated_musical,
    section_seats,
)
from shared.handlers.reservation_reads import get_seated_reservation
from shared.handlers.reservations import Placed, place_reservation
from shared.handlers.seat_book import held_seat_ids
from shared.handlers.seated_changes import apply_seated_payment_outcome, cancel_seated_reservation
from shared.handlers.seated_reservations import place_seated_reservation
from shared.ports import BatchFailed, Conflict, Page
from shared.topology import PERFORMANCES
from tests.support.handler_deps import reservation_deps, seated_deps
from tests.support.manual_clock import ManualClock

SEOUL = timezone(timedelta(hours=9))
SHOW = datetime(2026, 12, 10, 19, 0, tzinfo=SEOUL)  # the clock starts on 25 Nov 2026, 12:00 UTC
ALICE, BOB = Caller(customer_id="alice"), Caller(customer_id="bob")


def hall(cap: int | None = None) -> RegisterSeatedMusical:
    return RegisterSeatedMusical.model_validate_json(
        json.dumps(
            {
                "title": "Phantom",
                "grades": {"VIP": 1000, "R": 500},
                "sections": [
                    {"id": "A", "grade": "VIP", "rows": 2, "seatsPerRow": 4},
                    {"id": "B", "grade": "R", "rows": 2, "seatsPerRow": 4},
                    {"id": "C", "grade": "R", "rows": 2, "seatsPerRow": 4},
                ],
                "performances": [SHOW.isoformat()],
                "maxSeatsPerCustomer": cap,
            }
        )
    )


@pytest.fixture
def directory() -> PerformanceDirectory:
    return PerformanceDirectory()


@pytest.fixture
def performance_id(store, clock) -> str:
    return register_seated_musical(hall(), MusicalDeps(store, clock))["performances"][0]["id"]


def place(store, clock, directory, command, who=ALICE, key=None) -> Placed:
    return asyncio.run(
        place_seated_reservation(command, who, "corr", key, seated_deps(store, clock, directory))
    )


def held(performance_id: str, section_id: str, store) -> set[str]:
    return asyncio.run(held_seat_ids(performance_id, section_id, store))


def seats(performance_id: str, *seat_ids: str) -> ReserveSeats:
    return ReserveSeats(performance_id=performance_id, seat_ids=list(seat_ids))


def best(performance_id: str, count: int, grade: str = "R") -> ReserveBestAvailable:
    return ReserveBestAvailable(performance_id=performance_id, grade=grade, seats=count)


def available(store, directory, performance_id: str) -> int:
    return asyncio.run(get_performance(performance_id, store, directory)).available_seats


def test_explicit_seats_are_held_with_the_reservation_in_their_section(
    store, clock, directory, performance_id
):
    placed = place(store, clock, directory, seats(performance_id, "A-1-2", "A-1-3"))

    reservation = placed.reservation
    assert placed.created
    assert reservation.amount == 2000
    assert reservation.starts_at == SHOW
    assert len(reservation.id) <= 64
    assert seated_partition_of(reservation.id) == (performance_id, "A")
    assert held(performance_id, "A", store) == {"A-1-2", "A-1-3"}
    assert available(store, directory, performance_id) == 22


def test_a_seat_held_by_another_reservation_is_named_and_nothing_is_held(
    store, clock, directory, performance_id
):
    place(store, clock, directory, seats(performance_id, "B-1-2"))

    with pytest.raises(SeatsTaken) as taken:
        place(store, clock, directory, seats(performance_id, "B-1-1", "B-1-2"), who=BOB)

    assert taken.value.seat_ids == ["B-1-2"]
    assert held(performance_id, "B", store) == {"B-1-2"}
    assert available(store, directory, performance_id) == 23


@pytest.mark.parametrize(
    "seat_ids", [["A-1-1", "B-1-1"], ["A-3-1"], ["Z-1-1"], ["A-1-9"], ["nonsense"]]
)
def test_seats_the_hall_does_not_have_in_one_section_are_invalid(
    store, clock, directory, performance_id, seat_ids
):
    with pytest.raises(InvalidSeatRequest):
        place(store, clock, directory, seats(performance_id, *seat_ids))
    assert available(store, directory, performance_id) == 24


def test_an_unknown_grade_is_invalid_and_an_unknown_performance_not_found(
    store, clock, directory, performance_id
):
    with pytest.raises(InvalidSeatRequest):
        place(store, clock, directory, best(performance_id, 2, grade="Balcony"))
    with pytest.raises(NotFoundError):
        place(store, clock, directory, best("0" * 24, 2))


def test_best_available_prefers_the_nearest_row_with_adjacent_seats(
    store, clock, directory, performance_id
):
    place(store, clock, directory, seats(performance_id, "B-1-2"))

    chosen = place(store, clock, directory, best(performance_id, 3), who=BOB).reservation

    assert chosen.seat_ids == ["C-1-1", "C-1-2", "C-1-3"]
    assert chosen.amount == 1500


class StaleOnce:
    """The store, except that its first query answers as if nothing were held: the race a
    concurrent request wins between best available's read and its batch."""

    def __init__(self, store) -> None:
        self._store = store
        self.queries = 0

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    async def query_async(self, *args, **kwargs) -> Page:
        self.queries += 1
        if self.queries == 1:
            return Page([])
        return await self._store.query_async(*args, **kwargs)


def test_best_available_that_loses_a_race_reads_again_and_picks_free_seats(
    store, clock, directory, performance_id
):
    rival = place(store, clock, directory, seats(performance_id, "B-1-1", "B-1-2"))
    reader = StaleOnce(store)

    chosen = place(reader, clock, directory, best(performance_id, 2), who=BOB)

    assert not set(chosen.reservation.seat_ids) & set(rival.reservation.seat_ids)
    assert chosen.reservation.seat_ids == ["B-1-3", "B-1-4"]
    assert reader.queries > 2  # a second read of the grade's sections


def test_best_available_refuses_when_no_section_has_that_many_free(
    store, clock, directory, performance_id
):
    with pytest.raises(NotEnoughSeats):
        place(store, clock, directory, best(performance_id, 9))
    assert available(store, directory, performance_id) == 24


def test_the_cap_per_performance_refuses_what_goes_over_and_a_failed_hold_gives_it_back(
    store, clock, directory
):
    registered = register_seated_musical(hall(cap=3), MusicalDeps(store, clock))
    performance_id = registered["performances"][0]["id"]
    place(store, clock, directory, seats(performance_id, "A-1-1", "A-1-2"))
    place(store, clock, directory, seats(performance_id, "B-1-1"), who=BOB)

    with pytest.raises(SeatLimitReached):
        place(store, clock, directory, seats(performance_id, "C-1-1", "C-1-2"))
    with pytest.raises(SeatsTaken):
        place(store, clock, directory, seats(performance_id, "B-1-1"))

    allowance = store.read(PERFORMANCES.name, performance_id, SeatAllowance.id_for("alice"))
    assert allowance["seats"] == 2
    assert place(store, clock, directory, seats(performance_id, "C-1-1")).created


def test_an_idempotency_key_replays_the_first_best_available_reservation(
    store, clock, directory, performance_id
):
    first = place(store, clock, directory, best(performance_id, 2), key="k1")
    again = place(store, clock, directory, best(performance_id, 4), key="k1")

    assert again.reservation.id == first.reservation.id
    assert not again.created
    assert available(store, directory, performance_id) == 22


class SeatHolds:
    """The store, with each seat hold (a batch in a section partition) counted and first
    handed to `before_hold(n)`, n counting from 1."""

    def __init__(self, store, performance_id: str) -> None:
        self._store, self._performance_id = store, performance_id
        self.holds = 0

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    async def batch_async(self, container, partition, operations):
        if container == PERFORMANCES.name and partition != self._performance_id:
            self.holds += 1
            await self.before_hold(self.holds)
        return await self._store.batch_async(container, partition, operations)

    async def before_hold(self, number: int) -> None:
        pass


class HoldsMeet(SeatHolds):
    """The first seat hold waits until a second one is asked for (or a second passes): two
    requests then both choose before either has held anything."""

    def __init__(self, store, performance_id: str) -> None:
        super().__init__(store, performance_id)
        self._second = asyncio.Event()

    async def before_hold(self, number: int) -> None:
        if number == 1:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._second.wait(), 1)
        else:
            self._second.set()


def test_parallel_best_available_requests_with_one_key_place_one_reservation(
    store, clock, directory, performance_id
):
    # Section B's first row keeps two seats free: the first request claims them, and the
    # second, seeing them claimed, would choose the nearest row of section C.
    place(store, clock, directory, seats(performance_id, "B-1-3", "B-1-4"), who=BOB)
    racing = HoldsMeet(store, performance_id)
    deps = seated_deps(racing, clock, directory)

    async def both() -> list[Placed]:
        command = best(performance_id, 2)
        return await asyncio.gather(
            place_seated_reservation(command, ALICE, "corr", "k", deps),
            place_seated_reservation(command, ALICE, "corr", "k", deps),
        )

    answers = asyncio.run(both())

    assert racing.holds == 2
    assert {placed.reservation.id for placed in answers} == {answers[0].reservation.id}
    assert sorted(placed.created for placed in answers) == [False, True]
    assert held(performance_id, "C", store) == set()
    assert len(held(performance_id, "B", store)) == 4
    assert available(store, directory, performance_id) == 20


def test_a_keyed_best_available_request_that_lost_its_section_chooses_another(
    store, clock, directory, performance_id
):
    for row in (1, 2):
        place(
            store, clock, directory, seats(performance_id, *(f"B-{row}-{n}" for n in range(1, 5)))
        )
    reader = StaleOnce(store)  # section B looks free at the first read: it is full

    placed = place(reader, clock, directory, best(performance_id, 2), who=BOB, key="k3")

    assert placed.created
    assert placed.reservation.seat_ids == ["C-1-1", "C-1-2"]
    again = place(store, clock, directory, best(performance_id, 2), who=BOB, key="k3")
    assert again.reservation.id == placed.reservation.id
    assert not again.created


class FreedAtOnce(SeatHolds):
    """The first seat hold fails on a seat as if it were held, and it is free again when looked
    at: another reservation let it go in between."""

    async def before_hold(self, number: int) -> None:
        if number == 1:
            raise BatchFailed(0, Conflict("held"))


def test_a_seat_freed_between_the_hold_and_the_look_is_held_again(
    store, clock, directory, performance_id
):
    racing = FreedAtOnce(store, performance_id)

    placed = place(racing, clock, directory, seats(performance_id, "A-1-1", "A-1-2"))

    assert placed.created
    assert racing.holds == 2
    assert held(performance_id, "A", store) == {"A-1-1", "A-1-2"}


def test_a_refused_request_does_not_use_its_idempotency_key_up(
    store, clock, directory, performance_id
):
    place(store, clock, directory, seats(performance_id, "A-1-1"), who=BOB)
    with pytest.raises(SeatsTaken):
        place(store, clock, directory, seats(performance_id, "A-1-1"), key="k2")

    retried = place(store, clock, directory, seats(performance_id, "A-1-2"), key="k2")

    assert retried.created
    assert retried.reservation.seat_ids == ["A-1-2"]


def payment_event(event_type: EventType, reservation_id: str) -> Event:
    facts = PaymentFacts(
        reservation_id=reservation_id, musical_id="m", customer_id="alice", amount=1
    )
    return Event(
        event_id=f"{reservation_id}.{event_type}",
        event_type=event_type,
        correlation_id="corr",
        occurred_at=datetime.now(UTC),
        payload=facts.to_json_dict(),
    )


def test_a_declined_payment_rejects_and_gives_the_seats_back_once(
    store, clock, directory, performance_id
):
    reservation = place(store, clock, directory, seats(performance_id, "C-2-1")).reservation
    declined = payment_event(EventType.PAYMENT_DECLINED, reservation.id)

    rejected = apply_seated_payment_outcome(declined, seated_deps(store, clock))
    again = apply_seated_payment_outcome(declined, seated_deps(store, clock))

    assert rejected.status is ReservationStatus.REJECTED
    assert again.status is ReservationStatus.REJECTED
    assert held(performance_id, "C", store) == set()
    assert available(store, directory, performance_id) == 24


def confirmed(store, clock, directory, performance_id, *seat_ids):
    reservation = place(store, clock, directory, seats(performance_id, *seat_ids)).reservation
    approved = payment_event(EventType.PAYMENT_APPROVED, reservation.id)
    return apply_seated_payment_outcome(approved, seated_deps(store, clock))


@pytest.mark.parametrize(
    ("now", "fee"),
    [
        (datetime(2026, 11, 30, 14, 59, tzinfo=UTC), 0),  # 30 Nov 23:59 in Seoul: 10 days left
        (datetime(2026, 11, 30, 15, 0, tzinfo=UTC), 100),  # 1 Dec 00:00 in Seoul: 9 days, 10 %
        (datetime(2026, 12, 2, 12, 0, tzinfo=UTC), 100),  # 8 days left: 10 %
        (datetime(2026, 12, 9, 14, 59, tzinfo=UTC), 300),  # 9 Dec 23:59 in Seoul: 1 day, 30 %
    ],
)
def test_a_confirmed_reservation_keeps_the_fee_of_its_calendar_days_left(
    store, clock, directory, performance_id, now, fee
):
    reservation = confirmed(store, clock, directory, performance_id, "A-2-1")

    cancelled = cancel_seated_reservation(
        reservation.id, ALICE, seated_deps(store, ManualClock(now))
    )

    assert cancelled.status is ReservationStatus.CANCELLED
    assert (cancelled.cancellation_fee, cancelled.refund_amount) == (fee, 1000 - fee)
    assert available(store, directory, performance_id) == 24
    assert (
        cancel_seated_reservation(reservation.id, ALICE, seated_deps(store, ManualClock(now)))
        == cancelled
    )


def test_an_unpaid_reservation_cancelled_a_day_before_keeps_no_fee(
    store, clock, directory, performance_id
):
    reservation = place(store, clock, directory, seats(performance_id, "A-2-2")).reservation
    day_before = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)

    cancelled = cancel_seated_reservation(
        reservation.id, ALICE, seated_deps(store, ManualClock(day_before))
    )

    assert (cancelled.cancellation_fee, cancelled.refund_amount) == (0, 1000)


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 12, 9, 15, 0, tzinfo=UTC),  # 10 Dec 00:00 in Seoul: the day itself
        datetime(2026, 12, 11, 0, 0, tzinfo=UTC),  # after the performance
    ],
)
def test_on_the_day_of_the_performance_a_cancel_is_refused_and_nothing_changes(
    store, clock, directory, performance_id, now
):
    reservation = confirmed(store, clock, directory, performance_id, "A-1-4")

    with pytest.raises(TooLateToCancel):
        cancel_seated_reservation(reservation.id, ALICE, seated_deps(store, ManualClock(now)))

    assert (
        get_seated_reservation(reservation.id, ALICE, store).status is ReservationStatus.CONFIRMED
    )
    assert held(performance_id, "A", store) == {"A-1-4"}


def test_someone_elses_seated_reservation_does_not_exist_for_you(
    store, clock, directory, performance_id
):
    reservation = place(store, clock, directory, seats(performance_id, "B-2-4")).reservation

    with pytest.raises(NotFoundError):
        get_seated_reservation(reservation.id, BOB, store)
    with pytest.raises(NotFoundError):
        cancel_seated_reservation(reservation.id, BOB, seated_deps(store, clock))


def test_a_section_listing_marks_each_held_seat(store, clock, directory, performance_id):
    place(store, clock, directory, seats(performance_id, "B-2-3"))

    listing = json.loads(asyncio.run(section_seats(performance_id, "B", store, directory)))

    assert [s["id"] for s in listing["seats"] if not s["available"]] == ["B-2-3"]
    assert len(listing["seats"]) == 8
    with pytest.raises(NotFoundError):
        asyncio.run(section_seats(performance_id, "Z", store, directory))


def test_performances_in_the_past_are_refused(store, clock):
    command = hall().model_copy(update={"performances": [datetime(2026, 1, 1, tzinfo=UTC)]})
    with pytest.raises(InvalidSeatRequest):
        register_seated_musical(command, MusicalDeps(store, clock))


def test_a_general_admission_request_for_a_seated_musical_is_invalid(store, clock):
    musical_id = register_seated_musical(hall(), MusicalDeps(store, clock))["id"]
    command = PlaceReservation(musical_id=musical_id, seats=2)

    with pytest.raises(InvalidSeatRequest):
        asyncio.run(place_reservation(command, ALICE, "corr", None, reservation_deps(store, clock)))


def test_a_section_listing_is_written_once_per_state_of_its_held_seats(
    store, clock, directory, performance_id
):
    def listing() -> str:
        return asyncio.run(section_seats(performance_id, "C", store, directory))

    first, again = listing(), listing()
    place(store, clock, directory, seats(performance_id, "C-1-4"))
    after = json.loads(listing())

    assert again is first  # nobody bought: the same text, not written again
    assert [s["id"] for s in after["seats"] if not s["available"]] == ["C-1-4"]
    assert after["grade"] == "R"
    assert after["price"] == 500


def test_a_catalog_page_serves_a_seated_musical_through_its_model_in_catalog_order(
    store, clock, musical
):
    seated = register_seated_musical(hall(), MusicalDeps(store, clock))

    page = json.loads(asyncio.run(list_musicals(store, 10, None)).to_json())

    general, listed = page["items"]
    assert (general["id"], listed["id"]) == (musical.id, seated["id"])
    assert set(general) == set(Musical.served_fields())
    assert listed["availableSeats"] is None
    assert listed["grades"] == {"VIP": 1000, "R": 500}
    assert [p["id"] for p in listed["performances"]] == [p["id"] for p in seated["performances"]]


def test_a_key_first_used_for_seats_answers_a_general_admission_request_with_those_seats(
    store, clock, directory, performance_id, musical
):
    seated = place(store, clock, directory, best(performance_id, 2), key="k3").reservation

    again = asyncio.run(
        place_reservation(
            PlaceReservation(musical_id=musical.id, seats=1),
            ALICE,
            "corr",
            "k3",
            reservation_deps(store, clock),
        )
    )

    assert not again.created
    assert again.reservation.id == seated.id
    assert get_musical(musical.id, store).available_seats == 10  # nothing more held


def test_a_key_first_used_for_general_admission_answers_a_seated_request_with_that_one(
    store, clock, directory, performance_id, musical
):
    general = asyncio.run(
        place_reservation(
            PlaceReservation(musical_id=musical.id, seats=1),
            ALICE,
            "corr",
            "k4",
            reservation_deps(store, clock),
        )
    ).reservation

    again = place(store, clock, directory, best(performance_id, 2), key="k4")

    assert not again.created
    assert again.reservation.id == general.id
    assert available(store, directory, performance_id) == 24
