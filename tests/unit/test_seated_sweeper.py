"""The sweeper and seated reservations: the payment deadline capped at the performance's start,
expiry giving the seats, the section counter and the allowance back, and allowances that a crash
left taken given back (in-memory store; the gateway scripted)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest

from shared.api.problems import problem_for
from shared.domain.caller import Caller
from shared.domain.errors import ReservationExpired, SeatLimitReached
from shared.domain.events import event_id
from shared.domain.ids import section_partition
from shared.domain.models import ReservationStatus
from shared.domain.performances import SeatAllowance
from shared.domain.seating_commands import RegisterSeatedMusical, ReserveSeats
from shared.handlers.musicals import MusicalDeps
from shared.handlers.performances import (
    PerformanceDirectory,
    get_performance,
    register_seated_musical,
)
from shared.handlers.reservation_reads import find_seated
from shared.handlers.reservations import Placed
from shared.handlers.seat_book import held_seat_ids
from shared.handlers.seated_changes import cancel_seated_reservation
from shared.handlers.seated_reservations import place_seated_reservation
from shared.handlers.sweeper import Repair, sweep
from shared.topology import PERFORMANCES
from tests.support.handler_deps import seated_deps
from tests.unit import test_sweeper
from tests.unit.test_sweeper import DEADLINE, REPAIR_AFTER

ALICE = Caller(customer_id="alice")
# The sweeper's fixtures: the scripted gateway, the notice sender, the deps on this test's clock.
gateway = test_sweeper.gateway
sender = test_sweeper.sender
sweep_deps = test_sweeper.sweep_deps


def register(
    store, clock, starts_in: timedelta, cap: int | None = None, shows: int = 1
) -> list[str]:
    """A seated musical whose performances start `starts_in` from now (then a day apart)."""
    start = clock.now() + starts_in
    body = {
        "title": "Phantom",
        "grades": {"VIP": 1000, "R": 500},
        "sections": [
            {"id": "A", "grade": "VIP", "rows": 2, "seatsPerRow": 4},
            {"id": "B", "grade": "R", "rows": 2, "seatsPerRow": 4},
        ],
        "performances": [(start + timedelta(days=n)).isoformat() for n in range(shows)],
        "maxSeatsPerCustomer": cap,
    }
    command = RegisterSeatedMusical.model_validate_json(json.dumps(body))
    musical = register_seated_musical(command, MusicalDeps(store, clock))
    return [performance["id"] for performance in musical["performances"]]


def place(store, clock, performance_id: str, *seat_ids: str) -> Placed:
    command = ReserveSeats(performance_id=performance_id, seat_ids=list(seat_ids))
    return asyncio.run(
        place_seated_reservation(command, ALICE, "corr", None, seated_deps(store, clock))
    )


def available(store, performance_id: str) -> int:
    view = asyncio.run(get_performance(performance_id, store, PerformanceDirectory()))
    return view.available_seats


def allowance(store, performance_id: str) -> dict[str, Any]:
    return store.read(PERFORMANCES.name, performance_id, SeatAllowance.id_for("alice"))


def status(store, reservation_id: str) -> ReservationStatus | None:
    found = find_seated(reservation_id, store)
    return None if found is None else found.status


def test_an_unpaid_seated_reservation_expires_at_its_deadline_with_its_seats_counter_and_allowance(
    store, clock, sweep_deps, gateway
):
    gateway.mode = "down"  # its payment stays Deferred
    (performance_id,) = register(store, clock, starts_in=timedelta(days=10), cap=4)
    placed = place(store, clock, performance_id, "A-1-1", "A-1-2").reservation

    clock.advance(DEADLINE.total_seconds() - 10)
    assert sweep(sweep_deps).repairs[Repair.EXPIRED] == 0  # not yet
    clock.advance(20)
    report = sweep(sweep_deps)

    assert report.repairs[Repair.EXPIRED] == 1
    assert status(store, placed.id) is ReservationStatus.EXPIRED
    assert asyncio.run(held_seat_ids(performance_id, "A", store)) == set()
    assert available(store, performance_id) == 16
    assert allowance(store, performance_id)["seats"] == 0
    assert allowance(store, performance_id)["holds"] == {}
    expired = store.read(
        PERFORMANCES.name,
        section_partition(performance_id, "A"),
        event_id(placed.id, "ReservationExpired"),
    )
    assert expired["topic"] == "cancel"
    assert report.repairs[Repair.ALLOWANCE_NOT_RETURNED] == 0  # given back with the seats


def test_a_seated_reservation_expires_when_its_performance_starts_before_the_payment_deadline(
    store, clock, sweep_deps, gateway
):
    gateway.mode = "down"
    starts_in = timedelta(minutes=20)  # well inside DEADLINE (one hour)
    (performance_id,) = register(store, clock, starts_in=starts_in)
    placed = place(store, clock, performance_id, "B-1-1").reservation

    clock.advance(starts_in.total_seconds() - 10)
    sweep(sweep_deps)
    assert status(store, placed.id) is ReservationStatus.RESERVED
    clock.advance(20)
    sweep(sweep_deps)

    assert status(store, placed.id) is ReservationStatus.EXPIRED
    assert available(store, performance_id) == 16


def test_a_reservation_placed_just_before_its_performance_expires_at_the_start_not_later(
    store, clock, sweep_deps, gateway
):
    gateway.mode = "down"
    starts_in = REPAIR_AFTER / 2  # the sweeper would not look at it yet by its age alone
    (performance_id,) = register(store, clock, starts_in=starts_in)
    placed = place(store, clock, performance_id, "B-2-2").reservation

    clock.advance(starts_in.total_seconds() + 1)
    report = sweep(sweep_deps)

    assert status(store, placed.id) is ReservationStatus.EXPIRED
    assert report.repairs[Repair.EXPIRED] == 1


def test_a_young_seated_reservation_before_its_deadline_is_left_alone_even_near_its_start(
    store, clock, sweep_deps
):
    (performance_id,) = register(store, clock, starts_in=REPAIR_AFTER / 2)
    place(store, clock, performance_id, "A-2-1")

    report = sweep(sweep_deps)

    assert sum(report.repairs.values()) == 0


def test_cancelling_an_expired_seated_reservation_is_a_409_expired_and_changes_nothing(
    store, clock, sweep_deps, gateway
):
    gateway.mode = "down"
    (performance_id,) = register(store, clock, starts_in=timedelta(days=10))
    placed = place(store, clock, performance_id, "A-2-4").reservation
    clock.advance(DEADLINE.total_seconds() + 1)
    sweep(sweep_deps)

    with pytest.raises(ReservationExpired) as refused:
        cancel_seated_reservation(placed.id, ALICE, seated_deps(store, clock))

    problem = problem_for(refused.value)
    assert problem is not None
    assert (problem.type.status, problem.type.type_suffix) == (409, "expired")
    assert status(store, placed.id) is ReservationStatus.EXPIRED


class CrashingPatches:
    """The store, except that its next `patch` crashes: the process dies between the seats'
    batch and the allowance's give-back, in another partition."""

    def __init__(self, store) -> None:
        self._store = store
        self.crashes = 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def patch(self, *args: Any, **kwargs: Any) -> Any:
        if self.crashes:
            self.crashes -= 1
            raise RuntimeError("crash")
        return self._store.patch(*args, **kwargs)


def test_an_allowance_a_crash_kept_after_a_cancel_is_given_back_once_by_the_sweeper(
    store, clock, sweep_deps
):
    (performance_id,) = register(store, clock, starts_in=timedelta(days=10), cap=2)
    placed = place(store, clock, performance_id, "A-1-3", "A-1-4").reservation
    with pytest.raises(RuntimeError, match="crash"):
        cancel_seated_reservation(placed.id, ALICE, seated_deps(CrashingPatches(store), clock))
    assert status(store, placed.id) is ReservationStatus.CANCELLED
    assert allowance(store, performance_id)["seats"] == 2  # the seats came back, not the cap
    with pytest.raises(SeatLimitReached):
        place(store, clock, performance_id, "B-1-1")

    clock.advance(REPAIR_AFTER.total_seconds() + 1)
    first = sweep(sweep_deps)
    clock.advance(REPAIR_AFTER.total_seconds() + 1)
    second = sweep(sweep_deps)

    assert first.repairs[Repair.ALLOWANCE_NOT_RETURNED] == 1
    assert second.repairs[Repair.ALLOWANCE_NOT_RETURNED] == 0
    assert allowance(store, performance_id)["seats"] == 0
    assert place(store, clock, performance_id, "B-1-1", "B-1-2").created


class CrashAfterAllowance:
    """The store, except that every batch after the allowance was taken crashes: the process
    dies after counting the seats against the cap and before holding them."""

    def __init__(self, store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def batch_async(self, container: str, partition_key: str, operations: Any) -> Any:
        if container == PERFORMANCES.name and partition_key != self.performance_id:
            raise RuntimeError("crash")
        if any("holds." in str(op) and "Remove" in str(op) for op in operations):
            raise RuntimeError("crash")
        return await self._store.batch_async(container, partition_key, operations)


def test_an_allowance_taken_for_a_reservation_that_never_came_to_be_is_given_back(
    store, clock, sweep_deps
):
    (performance_id,) = register(store, clock, starts_in=timedelta(days=10), cap=3)
    kept = place(store, clock, performance_id, "B-1-1").reservation
    crashing = CrashAfterAllowance(store)
    crashing.performance_id = performance_id
    with pytest.raises(RuntimeError, match="crash"):
        place(crashing, clock, performance_id, "A-1-1", "A-1-2")
    assert allowance(store, performance_id)["seats"] == 3

    clock.advance(REPAIR_AFTER.total_seconds() + 1)
    report = sweep(sweep_deps)
    clock.advance(REPAIR_AFTER.total_seconds() + 1)
    again = sweep(sweep_deps)

    assert report.repairs[Repair.ALLOWANCE_NOT_RETURNED] == 1
    assert again.repairs[Repair.ALLOWANCE_NOT_RETURNED] == 0
    holds = allowance(store, performance_id)["holds"]
    assert allowance(store, performance_id)["seats"] == 1  # the reservation that exists
    assert [hold["placed"] for hold in holds.values()] == [True]  # not looked for again
    assert find_seated(kept.id, store).holds_seats


def test_the_cap_counts_per_performance_not_per_musical(store, clock):
    first, second = register(store, clock, starts_in=timedelta(days=10), cap=2, shows=2)
    place(store, clock, first, "A-1-1", "A-1-2")

    with pytest.raises(SeatLimitReached):
        place(store, clock, first, "B-1-1")
    assert place(store, clock, second, "B-1-1", "B-1-2").created
    assert allowance(store, first)["seats"] == 2
    assert allowance(store, second)["seats"] == 2


def test_the_sweep_leaves_performances_long_over_alone(store, clock, sweep_deps, monkeypatch):
    (performance_id,) = register(store, clock, starts_in=timedelta(hours=2))
    place(store, clock, performance_id, "A-1-1")
    queried: list[str] = []
    query = store.query
    monkeypatch.setattr(
        store, "query", lambda c, pk, *a, **k: queried.append(pk) or query(c, pk, *a, **k)
    )

    clock.advance(timedelta(days=8).total_seconds())
    sweep(sweep_deps)

    assert not [pk for pk in queried if pk.startswith(performance_id)]


def test_an_allowance_is_read_by_the_sweeper_once_it_is_quiet_not_on_every_sweep(
    store, clock, sweep_deps, monkeypatch
):
    (performance_id,) = register(store, clock, starts_in=timedelta(days=10), cap=4)
    place(store, clock, performance_id, "A-1-1")
    read: list[str] = []
    query = store.query

    def recording(container, partition_key, *args, **kwargs):
        page = query(container, partition_key, *args, **kwargs)
        if partition_key == performance_id:
            read.extend(item["id"] for item in page.items)
        return page

    monkeypatch.setattr(store, "query", recording)
    sweep(sweep_deps)  # too young yet
    clock.advance(REPAIR_AFTER.total_seconds() + 1)
    sweep(sweep_deps)  # quiet: read, its hold seen placed
    clock.advance(REPAIR_AFTER.total_seconds() + 1)
    sweep(sweep_deps)

    assert read == [SeatAllowance.id_for("alice")]
    assert [hold["placed"] for hold in allowance(store, performance_id)["holds"].values()] == [True]
