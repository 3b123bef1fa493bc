"""Placing and cancelling reservations, and payment outcomes, against the real embedded store."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from shared.api.problems import problem_for
from shared.domain.caller import Caller
from shared.domain.commands import PlaceReservation, RegisterMusical
from shared.domain.errors import (
    NotEnoughSeats,
    NotFoundError,
    PaymentsUnavailable,
    ReservationRejected,
    SeatLimitReached,
)
from shared.domain.events import Event, EventType, PaymentFacts
from shared.domain.ids import idempotency_record_id
from shared.domain.models import Musical, ReservationStatus, SeatHolding
from shared.handlers.known_holdings import KnownHoldings
from shared.handlers.musicals import MusicalDeps, MusicalDirectory, get_musical, register_musical
from shared.handlers.reservations import (
    apply_payment_outcome,
    cancel_reservation,
    get_reservation,
    place_reservation,
)
from shared.ports import Condition, DocumentStore, NotFound
from shared.topology import IDEMPOTENCY, MUSICALS
from tests.support.handler_deps import reservation_deps
from tests.support.manual_clock import ManualClock


def events_of(store: DocumentStore, musical_id: str) -> list[str]:
    page = store.query(MUSICALS.name, musical_id, where=[Condition("type", "=", "event")])
    return sorted(doc["eventType"] for doc in page.items)


def place(store, musical, caller, now, seats=2, key=None):
    return place_in(store, musical.id, caller, now, seats, key)


def place_in(store, musical_id, caller, now, seats=1, key=None, **options):
    """Place a reservation through the async use case, from synchronous test code."""
    return asyncio.run(
        place_reservation(
            PlaceReservation(musical_id=musical_id, seats=seats),
            caller,
            "corr-1",
            key,
            reservation_deps(store, ManualClock(now), **options),
        )
    )


def payment_event(event_type: EventType, reservation, now: datetime) -> Event:
    facts = PaymentFacts(
        reservation_id=reservation.id,
        musical_id=reservation.musical_id,
        customer_id=reservation.customer_id,
        amount=reservation.amount,
    )
    return Event(
        event_id=f"{reservation.id}.{event_type}",
        event_type=event_type,
        correlation_id="corr-1",
        occurred_at=now,
        payload=facts.to_json_dict(),
    )


def test_placing_holds_the_seats_records_the_event_and_prices_the_seats(
    store, clock, customer, musical: Musical
):
    placed = place(store, musical, customer, clock.now(), seats=3)

    assert placed.created
    assert placed.reservation.status is ReservationStatus.RESERVED
    assert placed.reservation.amount == 300
    assert get_musical(musical.id, store).available_seats == 7
    assert events_of(store, musical.id) == ["ReservationPlaced"]


def test_a_reservation_larger_than_what_is_left_is_refused_and_changes_nothing(
    store, clock, customer, musical
):
    place(store, musical, customer, clock.now(), seats=9)

    with pytest.raises(NotEnoughSeats):
        place(store, musical, customer, clock.now(), seats=2)

    assert get_musical(musical.id, store).available_seats == 1
    assert events_of(store, musical.id) == ["ReservationPlaced"]


def test_an_unknown_musical_is_not_found(store, clock, customer):
    with pytest.raises(NotFoundError):
        place_in(store, "0" * 32, customer, clock.now())


def test_the_same_idempotency_key_returns_the_first_reservation_and_holds_no_more_seats(
    store, clock, customer, musical
):
    first = place(store, musical, customer, clock.now(), seats=2, key="k-1")
    again = place(store, musical, customer, clock.now(), seats=5, key="k-1")

    assert not again.created
    assert again.reservation.id == first.reservation.id
    assert again.reservation.seats == 2
    assert get_musical(musical.id, store).available_seats == 8


def test_idempotency_keys_belong_to_their_customer(store, clock, customer, musical):
    first = place(store, musical, customer, clock.now(), key="shared-key")
    other = place(store, musical, Caller("bob"), clock.now(), key="shared-key")

    assert other.created
    assert other.reservation.id != first.reservation.id


def test_concurrent_requests_with_one_idempotency_key_make_one_reservation(
    store, clock, customer, musical
):
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda _: place(store, musical, customer, clock.now(), key="k"), range(16))
        )

    assert len({r.reservation.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert get_musical(musical.id, store).available_seats == 8


def test_concurrent_reservations_never_oversell(store, clock, musical):
    def attempt(i: int) -> bool:
        try:
            place(store, musical, Caller(f"c{i}"), clock.now(), seats=1)
        except NotEnoughSeats:
            return False
        return True

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(attempt, range(40)))

    assert sum(outcomes) == 10
    assert get_musical(musical.id, store).available_seats == 0


def test_other_customers_cannot_see_a_reservation_but_admins_can(store, clock, customer, musical):
    reservation = place(store, musical, customer, clock.now()).reservation

    with pytest.raises(NotFoundError):
        get_reservation(reservation.id, Caller("mallory"), store)
    assert (
        get_reservation(reservation.id, Caller("boss", is_admin=True), store).id == reservation.id
    )


def test_cancelling_gives_the_seats_back_once_and_is_idempotent(store, clock, customer, musical):
    reservation = place(store, musical, customer, clock.now(), seats=4).reservation

    cancelled = cancel_reservation(reservation.id, customer, reservation_deps(store, clock))
    again = cancel_reservation(reservation.id, customer, reservation_deps(store, clock))

    assert cancelled.status is ReservationStatus.CANCELLED
    assert again.status is ReservationStatus.CANCELLED
    assert get_musical(musical.id, store).available_seats == 10
    assert events_of(store, musical.id) == ["ReservationCancelled", "ReservationPlaced"]


def test_a_stranger_cannot_cancel_someone_elses_reservation(store, clock, customer, musical):
    reservation = place(store, musical, customer, clock.now()).reservation

    with pytest.raises(NotFoundError):
        cancel_reservation(reservation.id, Caller("mallory"), reservation_deps(store, clock))
    assert get_musical(musical.id, store).available_seats == 8


def test_approval_confirms_and_a_redelivered_approval_changes_nothing(
    store, clock, customer, musical
):
    reservation = place(store, musical, customer, clock.now()).reservation
    approved = payment_event(EventType.PAYMENT_APPROVED, reservation, clock.now())

    apply_payment_outcome(approved, reservation_deps(store, clock))
    again = apply_payment_outcome(approved, reservation_deps(store, clock))

    assert again.status is ReservationStatus.CONFIRMED
    assert events_of(store, musical.id) == ["ReservationConfirmed", "ReservationPlaced"]


def test_decline_rejects_and_gives_the_seats_back_exactly_once(store, clock, customer, musical):
    reservation = place(store, musical, customer, clock.now(), seats=3).reservation
    declined = payment_event(EventType.PAYMENT_DECLINED, reservation, clock.now())

    apply_payment_outcome(declined, reservation_deps(store, clock))
    apply_payment_outcome(declined, reservation_deps(store, clock))

    assert get_reservation(reservation.id, customer, store).status is ReservationStatus.REJECTED
    assert get_musical(musical.id, store).available_seats == 10
    with pytest.raises(ReservationRejected):
        cancel_reservation(reservation.id, customer, reservation_deps(store, clock))


def test_a_decline_after_a_cancel_does_not_give_the_seats_back_twice(
    store, clock, customer, musical
):
    reservation = place(store, musical, customer, clock.now(), seats=3).reservation
    cancel_reservation(reservation.id, customer, reservation_deps(store, clock))

    apply_payment_outcome(
        payment_event(EventType.PAYMENT_DECLINED, reservation, clock.now()),
        reservation_deps(store, clock),
    )

    assert get_reservation(reservation.id, customer, store).status is ReservationStatus.CANCELLED
    assert get_musical(musical.id, store).available_seats == 10


def test_a_confirmed_reservation_can_be_cancelled_and_its_seats_come_back(
    store, clock, customer, musical
):
    reservation = place(store, musical, customer, clock.now(), seats=2).reservation
    apply_payment_outcome(
        payment_event(EventType.PAYMENT_APPROVED, reservation, clock.now()),
        reservation_deps(store, clock),
    )

    cancelled = cancel_reservation(reservation.id, customer, reservation_deps(store, clock))

    assert cancelled.status is ReservationStatus.CANCELLED
    assert get_musical(musical.id, store).available_seats == 10


def test_a_cancel_racing_a_decline_gives_the_seats_back_once(store, clock, customer, musical):
    for _ in range(10):
        reservation = place(store, musical, customer, clock.now(), seats=5).reservation
        declined = payment_event(EventType.PAYMENT_DECLINED, reservation, clock.now())
        with ThreadPoolExecutor(2) as pool:
            pool.submit(apply_payment_outcome, declined, reservation_deps(store, clock))
            cancelling = pool.submit(
                cancel_reservation, reservation.id, customer, reservation_deps(store, clock)
            )
        with contextlib.suppress(ReservationRejected):
            cancelling.result()
        assert get_musical(musical.id, store).available_seats == 10


def test_the_musical_directory_reads_each_musical_once(store, musical):
    directory = MusicalDirectory(store)

    first = directory.facts(musical.id)
    store.delete(MUSICALS.name, musical.id, musical.id)

    assert directory.facts(musical.id) == first
    with pytest.raises(NotFoundError):
        MusicalDirectory(store).facts(musical.id)


def test_a_refused_request_with_an_idempotency_key_leaves_nothing_behind(
    store, clock, customer, musical
):
    place(store, musical, customer, clock.now(), seats=9)
    with pytest.raises(NotEnoughSeats):
        place(store, musical, customer, clock.now(), seats=2, key="too-many")
    with pytest.raises(NotFoundError):
        place_in(store, "0" * 32, customer, clock.now(), key="unknown-musical")

    assert store.query(IDEMPOTENCY.name, customer.customer_id).items == []
    retried = place(store, musical, customer, clock.now(), seats=1, key="too-many")
    assert retried.created
    assert retried.reservation.seats == 1


def test_load_shedding_refuses_new_orders_but_never_a_replay(store, clock, customer, musical):
    first = place(store, musical, customer, clock.now(), key="before-the-outage")

    async def refuse() -> None:
        raise PaymentsUnavailable("payments are down", retry_after_seconds=5)

    def place_while_down(key: str | None):
        return place_in(store, musical.id, customer, clock.now(), 2, key, admit=refuse)

    replayed = place_while_down("before-the-outage")
    with pytest.raises(PaymentsUnavailable):
        place_while_down("during-the-outage")
    with pytest.raises(PaymentsUnavailable):
        place_while_down(None)

    assert replayed.reservation.id == first.reservation.id
    assert get_musical(musical.id, store).available_seats == 8


def test_requests_in_flight_together_on_one_loop_hold_exactly_the_seats(
    store, clock, customer, musical
):
    """The hot path is async: many requests interleave on the worker's event loop."""
    deps = reservation_deps(store, clock)

    async def attempt(key: str | None, seats: int):
        try:
            return await place_reservation(
                PlaceReservation(musical_id=musical.id, seats=seats), customer, "corr", key, deps
            )
        except NotEnoughSeats:
            return None

    async def scenario():
        same_key = [attempt("same-key", 1) for _ in range(10)]
        others = [attempt(None, 1) for _ in range(12)]
        return await asyncio.gather(*same_key, *others)

    outcomes = asyncio.run(scenario())

    keyed = {placed.reservation.id if placed else None for placed in outcomes[:10]}
    assert len(keyed) == 1  # every request with the key got the same answer
    assert sum(1 for placed in outcomes[:10] if placed and placed.created) == len(keyed - {None})
    held = len(keyed - {None}) + sum(1 for placed in outcomes[10:] if placed is not None)
    assert held == 10  # 13 seats asked for, 10 to give: all of them held, none oversold
    assert get_musical(musical.id, store).available_seats == 0


def test_parallel_requests_with_one_key_for_the_last_seats_all_answer_with_the_one_reservation(
    store, clock, customer, musical
):
    """A request with the key that loses the seats to a parallel request with the same key
    answers with that request's reservation, never 409, and keeps the key."""

    def attempt(_: int):
        try:
            return place(store, musical, customer, clock.now(), seats=10, key="last-seats")
        except NotEnoughSeats:
            return None

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(16)))

    assert None not in results
    assert len({placed.reservation.id for placed in results}) == 1
    assert sum(placed.created for placed in results) == 1
    again = place(store, musical, customer, clock.now(), seats=10, key="last-seats")
    assert again.reservation.id == results[0].reservation.id
    assert get_musical(musical.id, store).available_seats == 0


# --------------------------------------------------------------------------- maxSeatsPerCustomer


@pytest.fixture
def capped(store, clock) -> Musical:
    command = RegisterMusical(title="Wicked", seats=50, price=10, max_seats_per_customer=4)
    return register_musical(command, MusicalDeps(store, clock))


def held_by(store, musical: Musical, customer: Caller) -> int:
    holding = store.read(MUSICALS.name, musical.id, SeatHolding.id_for(customer.customer_id))
    return holding["seats"]


def test_a_customer_may_hold_up_to_the_cap_and_no_more(store, clock, customer, capped):
    place(store, capped, customer, clock.now(), seats=3)
    place(store, capped, customer, clock.now(), seats=1)

    with pytest.raises(SeatLimitReached) as refused:
        place(store, capped, customer, clock.now(), seats=1)

    problem = problem_for(refused.value)
    assert problem is not None
    assert (problem.type.status, problem.type.type_suffix) == (409, "seat-limit")
    assert held_by(store, capped, customer) == 4
    assert get_musical(capped.id, store).available_seats == 46
    assert events_of(store, capped.id) == ["ReservationPlaced"] * 2


def test_one_request_over_the_cap_is_refused_before_anything_is_written(
    store, clock, customer, capped
):
    with pytest.raises(SeatLimitReached):
        place(store, capped, customer, clock.now(), seats=5)

    assert get_musical(capped.id, store).available_seats == 50
    assert events_of(store, capped.id) == []


def test_the_cap_is_per_customer(store, clock, customer, capped):
    place(store, capped, customer, clock.now(), seats=4)

    placed = place(store, capped, Caller("bob"), clock.now(), seats=4)

    assert placed.created
    assert placed.reservation.seat_limit == 4


def test_cancel_and_reject_give_the_allowance_back(store, clock, customer, capped):
    first = place(store, capped, customer, clock.now(), seats=4).reservation
    cancel_reservation(first.id, customer, reservation_deps(store, clock))
    cancel_reservation(
        first.id, customer, reservation_deps(store, clock)
    )  # again: nothing moves twice
    second = place(store, capped, customer, clock.now(), seats=4).reservation
    declined = payment_event(EventType.PAYMENT_DECLINED, second, clock.now())
    apply_payment_outcome(declined, reservation_deps(store, clock))
    apply_payment_outcome(declined, reservation_deps(store, clock))

    assert held_by(store, capped, customer) == 0
    assert place(store, capped, customer, clock.now(), seats=4).created


def test_a_confirmed_reservation_still_counts_against_the_cap(store, clock, customer, capped):
    placed = place(store, capped, customer, clock.now(), seats=4).reservation
    apply_payment_outcome(
        payment_event(EventType.PAYMENT_APPROVED, placed, clock.now()),
        reservation_deps(store, clock),
    )

    with pytest.raises(SeatLimitReached):
        place(store, capped, customer, clock.now(), seats=1)


def test_parallel_requests_of_one_customer_never_end_above_the_cap(store, clock, customer, capped):
    def attempt(_: int) -> bool:
        try:
            place(store, capped, customer, clock.now(), seats=1)
        except SeatLimitReached:
            return False
        return True

    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(attempt, range(10)))

    assert sum(outcomes) == 4
    assert held_by(store, capped, customer) == 4
    assert get_musical(capped.id, store).available_seats == 46


def test_a_replayed_idempotency_key_answers_its_first_reservation_before_the_cap(
    store, clock, customer, capped
):
    first = place(store, capped, customer, clock.now(), seats=4, key="k")

    replay = place(store, capped, customer, clock.now(), seats=4, key="k")

    assert not replay.created
    assert replay.reservation.id == first.reservation.id
    assert held_by(store, capped, customer) == 4


def test_a_request_refused_by_the_cap_releases_its_idempotency_key(store, clock, customer, capped):
    place(store, capped, customer, clock.now(), seats=4)
    with pytest.raises(SeatLimitReached):
        place(store, capped, customer, clock.now(), seats=1, key="k")

    with pytest.raises(NotFound):
        store.read(IDEMPOTENCY.name, customer.customer_id, idempotency_record_id("k"))


class CountingBatches:
    """The store, counting the transactional batches the async use cases send it."""

    def __init__(self, inner: DocumentStore) -> None:
        self.inner = inner
        self.batches = 0

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    async def batch_async(self, container, partition_key, operations):
        self.batches += 1
        return await self.inner.batch_async(container, partition_key, operations)


def test_a_first_booking_creates_the_holding_and_a_repeat_patches_it_each_in_one_batch(
    store, clock, customer, capped
):
    counting, holdings = CountingBatches(store), KnownHoldings()

    place_in(counting, capped.id, customer, clock.now(), seats=1, holdings=holdings)
    place_in(counting, capped.id, customer, clock.now(), seats=2, holdings=holdings)

    assert counting.batches == 2
    assert held_by(store, capped, customer) == 3


def test_a_process_that_has_not_met_the_holding_patches_it_after_one_conflict(
    store, clock, customer, capped
):
    place_in(store, capped.id, customer, clock.now(), seats=1, holdings=KnownHoldings())
    counting, elsewhere = CountingBatches(store), KnownHoldings()

    place_in(counting, capped.id, customer, clock.now(), seats=2, holdings=elsewhere)
    place_in(counting, capped.id, customer, clock.now(), seats=1, holdings=elsewhere)

    assert counting.batches == 3  # Create refused (Conflict), Patch; then Patch at once
    assert held_by(store, capped, customer) == 4


def test_a_holding_wrongly_believed_to_exist_is_created_after_one_refusal(
    store, clock, customer, capped
):
    counting, holdings = CountingBatches(store), KnownHoldings()
    holdings.learn((capped.id, customer.customer_id), exists=True)

    placed = place_in(counting, capped.id, customer, clock.now(), seats=2, holdings=holdings)

    assert placed.created
    assert counting.batches == 2  # Patch refused (NotFound), Create
    assert held_by(store, capped, customer) == 2


def test_known_holdings_forget_the_least_recently_used_beyond_their_capacity():
    holdings = KnownHoldings(capacity=2)
    holdings.learn(("m", "a"), exists=True)
    holdings.learn(("m", "b"), exists=True)
    assert ("m", "a") in holdings  # now the most recently used

    holdings.learn(("m", "c"), exists=True)
    holdings.learn(("m", "a"), exists=False)

    assert [key in holdings for key in (("m", "a"), ("m", "b"), ("m", "c"))] == [
        False,
        False,
        True,
    ]
