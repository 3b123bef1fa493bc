"""Seated reservations: holding chosen seats of one performance, cancelling with a fee, and
applying payment outcomes to them (CONTRACT §6).

Every change is one transactional batch in the reservation's section partition: the held
seats (one item per seat, id = seat id), the section's counter, the reservation and its outbox
event. A seat held twice conflicts inside the batch, so nothing is ever sold twice. What spans
sections (a customer's cap per performance) is an allowance item in the performance partition,
taken before the hold by a conditional patch and given back when the hold fails or the seats
come back. See docs/seating.md.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from shared.domain.caller import Caller
from shared.domain.errors import NotEnoughSeats, NotFoundError, ReservationRejected
from shared.domain.events import Event, EventType, reservation_event
from shared.domain.fees import cancellation_terms
from shared.domain.ids import (
    idempotency_record_id,
    new_reservation_suffix,
    seated_partition_of,
    seated_reservation_id,
    section_partition,
)
from shared.domain.models import ReservationStatus
from shared.domain.performances import (
    COUNTER_ID,
    PARTITION_FIELD,
    HeldSeat,
    Performance,
    SeatAllowance,
    SeatedOrder,
    SeatedReservation,
)
from shared.domain.seating import Seat, best_available
from shared.domain.seating_commands import ReserveBestAvailable, ReserveSeats
from shared.domain.seating_errors import (
    InvalidSeatRequest,
    SeatLimitReached,
    SeatsTaken,
    TooLateToCancel,
)
from shared.handlers.performances import PerformanceDirectory, held_seat_ids
from shared.handlers.reservations import Placed
from shared.ports import (
    AsyncDocumentStore,
    BatchFailed,
    Condition,
    Conflict,
    Create,
    Delete,
    DocumentStore,
    Incr,
    NotFound,
    Patch,
    PreconditionFailed,
    Replace,
)
from shared.topology import IDEMPOTENCY, PERFORMANCES

MAX_RACE_RETRIES = 20
# Best available re-reads and picks again after a lost race at most this many times: under
# contention every request computes the same best seats, and 10 left some refused (bench.seated).
MAX_PICKS = 40

SeatedCommand = ReserveSeats | ReserveBestAvailable


async def _admit_all() -> None:
    """Take every new order (no load shedding)."""


async def place_seated_reservation(
    command: SeatedCommand,
    caller: Caller,
    correlation_id: str,
    idempotency_key: str | None,
    store: AsyncDocumentStore,
    reader: DocumentStore,
    performances: PerformanceDirectory,
    now: datetime,
    admit: Callable[[], Awaitable[None]] = _admit_all,
) -> Placed:
    """Hold exactly the seats asked for (or the best available ones) and record the
    reservation and its event, or refuse and change nothing.

    `reader` serves the queries of best available (the held seats of a section), run in a
    thread so as not to block the event loop. With an Idempotency-Key, the first request's body
    is the one carried out and a replay answers with its reservation before anything else.
    """
    performance = await performances.get_async(command.performance_id, store)
    _validate(command, performance)
    if idempotency_key is None:
        await admit()
        return await _place(
            command,
            new_reservation_suffix(),
            performance,
            caller,
            correlation_id,
            store,
            reader,
            now,
        )
    record_id = idempotency_record_id(f"seated\n{idempotency_key}")
    for _ in range(MAX_RACE_RETRIES):
        order = await _read_order(record_id, caller, store)
        if order is not None:
            existing = await _placed_by(order, store, performances)
            if existing is not None:
                return Placed(existing, created=False)
        await admit()
        try:
            order = await _hold_order(order, record_id, caller, command, performance, store, now)
        except (Conflict, PreconditionFailed, NotFound):
            continue  # another request with this key moved first: look again
        first = await performances.get_async(order.performance_id, store)
        try:
            return await _place(
                _command_of(order), order.suffix, first, caller, correlation_id, store, reader, now
            )
        except (NotEnoughSeats, SeatsTaken, SeatLimitReached, NotFoundError, InvalidSeatRequest):
            with contextlib.suppress(NotFound, PreconditionFailed):
                await store.delete_async(
                    IDEMPOTENCY.name, caller.customer_id, order.id, if_match=order.etag
                )
            raise
    raise RuntimeError(f"Idempotency-Key {idempotency_key!r} kept changing; retry the request")


def _validate(command: SeatedCommand, performance: Performance) -> None:
    seat_map = performance.seat_map
    if isinstance(command, ReserveSeats):
        try:
            seat_map.one_section(command.seat_ids)
        except ValueError as error:
            raise InvalidSeatRequest(str(error)) from None
    elif command.grade not in seat_map.grades:
        raise InvalidSeatRequest(f"no grade {command.grade!r} in this hall")


async def _place(
    command: SeatedCommand,
    suffix: str,
    performance: Performance,
    caller: Caller,
    correlation_id: str,
    store: AsyncDocumentStore,
    reader: DocumentStore,
    now: datetime,
) -> Placed:
    _validate(command, performance)
    count = len(command.seat_ids) if isinstance(command, ReserveSeats) else command.seats
    await _take_allowance(performance, caller, count, store)
    try:
        if isinstance(command, ReserveSeats):
            _, seats = performance.seat_map.one_section(command.seat_ids)
            return await _hold(seats, suffix, performance, caller, correlation_id, store, now)
        return await _hold_best(
            command, suffix, performance, caller, correlation_id, store, reader, now
        )
    except _Kept as kept:  # the same request, replayed, placed it first: ours is not needed
        await _give_allowance_back(performance, caller.customer_id, count, store)
        return kept.placed
    except Exception:
        await _give_allowance_back(performance, caller.customer_id, count, store)
        raise


class _Kept(Exception):
    """The hold did not create a reservation, but one exists already (an idempotent race)."""

    def __init__(self, placed: Placed) -> None:
        self.placed = placed


async def _hold(
    seats: Sequence[Seat],
    suffix: str,
    performance: Performance,
    caller: Caller,
    correlation_id: str,
    store: AsyncDocumentStore,
    now: datetime,
) -> Placed:
    """One batch in the section partition: the seats, the counter, the reservation, its event."""
    section_id = seats[0].section
    partition = section_partition(performance.id, section_id)
    reservation = SeatedReservation(
        id=seated_reservation_id(performance.id, section_id, suffix),
        musical_id=performance.musical_id,
        musical_title=performance.musical_title,
        customer_id=caller.customer_id,
        seats=len(seats),
        amount=sum(performance.seat_map.price_of(seat) for seat in seats),
        status=ReservationStatus.RESERVED,
        correlation_id=correlation_id,
        created_at=now,
        updated_at=now,
        performance_id=performance.id,
        section_id=section_id,
        starts_at=performance.starts_at,
        seat_ids=[seat.id for seat in seats],
    )
    held = [
        Create(
            HeldSeat(
                id=seat.id,
                performance_id=performance.id,
                section_id=section_id,
                reservation_id=reservation.id,
            ).to_document()
        )
        for seat in seats
    ]
    placed = reservation_event(EventType.RESERVATION_PLACED, reservation, now)
    operations = [
        *held,
        Patch(
            COUNTER_ID,
            [Incr("availableSeats", -len(seats))],
            condition=[Condition("availableSeats", ">=", len(seats))],
        ),
        Create(reservation.to_document()),
        Create(placed.to_document(PARTITION_FIELD, partition)),
    ]
    try:
        stored = await store.batch_async(PERFORMANCES.name, partition, operations)
    except BatchFailed as failure:
        if failure.index < len(held) and isinstance(failure.cause, Conflict):
            taken = await _held_by_others(partition, seats, reservation.id, store)
            if not taken:  # held by this very reservation: an idempotent replay won the race
                raise _Kept(await _existing(reservation.id, store)) from None
            raise SeatsTaken(taken) from None
        if failure.index == len(held) + 1 and isinstance(failure.cause, Conflict):
            raise _Kept(await _existing(reservation.id, store)) from None
        if failure.index == len(held) and isinstance(failure.cause, PreconditionFailed):
            raise NotEnoughSeats(
                f"section {section_id} has fewer than {len(seats)} seats free"
            ) from None
        raise
    reservation.etag = stored[len(held) + 1]["_etag"]
    return Placed(reservation, created=True)


async def _hold_best(
    command: ReserveBestAvailable,
    suffix: str,
    performance: Performance,
    caller: Caller,
    correlation_id: str,
    store: AsyncDocumentStore,
    reader: DocumentStore,
    now: datetime,
) -> Placed:
    """Read the held seats of the grade's sections, choose, hold; a lost race picks again."""
    sections = performance.seat_map.sections_of(command.grade)
    for _ in range(MAX_PICKS):
        taken = await asyncio.to_thread(
            _taken_seats, performance.id, [s.id for s in sections], reader
        )
        choice = best_available(performance.seat_map, command.grade, command.seats, taken)
        if choice is None:
            raise NotEnoughSeats(
                f"no section of grade {command.grade} has {command.seats} seats free"
            )
        try:
            return await _hold(choice, suffix, performance, caller, correlation_id, store, now)
        except (SeatsTaken, NotEnoughSeats):
            continue  # someone held some of them after our read: read again and pick again
    raise NotEnoughSeats(f"the seats of grade {command.grade} are selling too fast; try again")


def _taken_seats(
    performance_id: str, section_ids: Sequence[str], reader: DocumentStore
) -> dict[str, frozenset[Seat]]:
    return {
        section_id: frozenset(
            Seat.parse(seat_id) for seat_id in held_seat_ids(performance_id, section_id, reader)
        )
        for section_id in section_ids
    }


async def _held_by_others(
    partition: str, seats: Sequence[Seat], reservation_id: str, store: AsyncDocumentStore
) -> list[str]:
    """The seats among `seats` that another reservation holds (re-read after a conflict)."""
    taken: list[str] = []
    for seat in seats:
        try:
            document = await store.read_async(PERFORMANCES.name, partition, seat.id)
        except NotFound:
            continue
        if document.get("reservationId") != reservation_id:
            taken.append(seat.id)
    return taken


async def _existing(reservation_id: str, store: AsyncDocumentStore) -> Placed:
    found = await find_seated_async(reservation_id, store)
    if found is None:
        raise NotFoundError(f"no reservation {reservation_id!r}")
    return Placed(found, created=False)


# --------------------------------------------------------------------------- the allowance


async def _take_allowance(
    performance: Performance, caller: Caller, count: int, store: AsyncDocumentStore
) -> None:
    """Count `count` more seats against the customer's cap for this performance, or refuse."""
    cap = performance.max_seats_per_customer
    if cap is None:
        return
    if count > cap:
        raise SeatLimitReached(f"at most {cap} seats per customer for this performance")
    allowance_id = SeatAllowance.id_for(caller.customer_id)
    for _ in range(MAX_RACE_RETRIES):
        try:
            await store.batch_async(
                PERFORMANCES.name,
                performance.id,
                [
                    Patch(
                        allowance_id,
                        [Incr("seats", count)],
                        condition=[Condition("seats", "<=", cap - count)],
                    )
                ],
            )
            return
        except BatchFailed as failure:
            if isinstance(failure.cause, PreconditionFailed):
                raise SeatLimitReached(
                    f"at most {cap} seats per customer for this performance"
                ) from None
            if not isinstance(failure.cause, NotFound):
                raise
        first = SeatAllowance(
            id=allowance_id,
            performance_id=performance.id,
            customer_id=caller.customer_id,
            seats=count,
        )
        try:
            await store.create_async(PERFORMANCES.name, first.to_document())
            return
        except Conflict:
            continue  # created meanwhile by a parallel request: patch it
    raise RuntimeError("the seat allowance kept changing; retry the request")


async def _give_allowance_back(
    performance: Performance, customer_id: str, count: int, store: AsyncDocumentStore
) -> None:
    if performance.max_seats_per_customer is None:
        return
    await store.batch_async(
        PERFORMANCES.name,
        performance.id,
        [Patch(SeatAllowance.id_for(customer_id), [Incr("seats", -count)])],
    )


def _give_allowance_back_sync(
    performance: Performance, customer_id: str, count: int, store: DocumentStore
) -> None:
    if performance.max_seats_per_customer is None:
        return
    with contextlib.suppress(NotFound):
        store.patch(
            PERFORMANCES.name,
            performance.id,
            SeatAllowance.id_for(customer_id),
            [Incr("seats", -count)],
        )


# --------------------------------------------------------------------------- idempotency


async def _read_order(
    record_id: str, caller: Caller, store: AsyncDocumentStore
) -> SeatedOrder | None:
    try:
        document = await store.read_async(IDEMPOTENCY.name, caller.customer_id, record_id)
    except NotFound:
        return None
    return SeatedOrder.from_document(document)


async def _placed_by(
    order: SeatedOrder, store: AsyncDocumentStore, performances: PerformanceDirectory
) -> SeatedReservation | None:
    """The reservation the key's first request placed, if it was placed."""
    if order.reservation_id is not None:
        return await find_seated_async(order.reservation_id, store)
    performance = await performances.get_async(order.performance_id, store)
    for section in performance.seat_map.sections_of(order.grade or ""):
        found = await find_seated_async(
            seated_reservation_id(performance.id, section.id, order.suffix), store
        )
        if found is not None:
            return found
    return None


async def _hold_order(
    order: SeatedOrder | None,
    record_id: str,
    caller: Caller,
    command: SeatedCommand,
    performance: Performance,
    store: AsyncDocumentStore,
    now: datetime,
) -> SeatedOrder:
    """Create the key's record, or rewrite it (new ETag) so that an earlier request that
    fails cannot release the key under this one."""
    if order is None:
        suffix = new_reservation_suffix()
        explicit = isinstance(command, ReserveSeats)
        fresh = SeatedOrder(
            id=record_id,
            customer_id=caller.customer_id,
            performance_id=performance.id,
            suffix=suffix,
            seat_ids=command.seat_ids if explicit else None,
            grade=None if explicit else command.grade,
            seats=len(command.seat_ids) if explicit else command.seats,
            reservation_id=seated_reservation_id(
                performance.id, Seat.parse(command.seat_ids[0]).section, suffix
            )
            if explicit
            else None,
            created_at=now,
        )
        stored = await store.create_async(IDEMPOTENCY.name, fresh.to_document())
    else:
        stored = await store.replace_async(
            IDEMPOTENCY.name, order.to_document(), if_match=order.etag
        )
    return SeatedOrder.from_document(stored)


def _command_of(order: SeatedOrder) -> SeatedCommand:
    if order.seat_ids is not None:
        return ReserveSeats(performance_id=order.performance_id, seat_ids=order.seat_ids)
    return ReserveBestAvailable(
        performance_id=order.performance_id, grade=order.grade or "", seats=order.seats
    )


# --------------------------------------------------------------------------- reads


def find_seated(reservation_id: str, store: DocumentStore) -> SeatedReservation | None:
    partition = _partition_of(reservation_id)
    if partition is None:
        return None
    try:
        return _as_seated(store.read(PERFORMANCES.name, partition, reservation_id))
    except NotFound:
        return None


async def find_seated_async(
    reservation_id: str, store: AsyncDocumentStore
) -> SeatedReservation | None:
    partition = _partition_of(reservation_id)
    if partition is None:
        return None
    try:
        return _as_seated(await store.read_async(PERFORMANCES.name, partition, reservation_id))
    except NotFound:
        return None


def _partition_of(reservation_id: str) -> str | None:
    located = seated_partition_of(reservation_id)
    return section_partition(*located) if located else None


def _as_seated(document: dict) -> SeatedReservation | None:
    return (
        SeatedReservation.from_document(document) if document.get("type") == "reservation" else None
    )


def get_seated_reservation(
    reservation_id: str, caller: Caller, store: DocumentStore
) -> SeatedReservation:
    """The reservation, if the caller owns it or is an admin; otherwise it does not exist."""
    reservation = find_seated(reservation_id, store)
    if reservation is None or not (
        caller.is_admin or reservation.customer_id == caller.customer_id
    ):
        raise NotFoundError(f"no reservation {reservation_id!r}")
    return reservation


# --------------------------------------------------------------------------- changes


def cancel_seated_reservation(
    reservation_id: str,
    caller: Caller,
    store: DocumentStore,
    performances: PerformanceDirectory,
    now: datetime,
) -> SeatedReservation:
    """Cancel: the seats back at once, the fee by the days left (kept only when Confirmed),
    refused on the day of the performance or after it, whatever the status."""
    for _ in range(MAX_RACE_RETRIES):
        reservation = get_seated_reservation(reservation_id, caller, store)
        if reservation.status is ReservationStatus.CANCELLED:
            return reservation
        if reservation.status is ReservationStatus.REJECTED:
            raise ReservationRejected(
                f"reservation {reservation_id} was rejected; nothing to cancel"
            )
        terms = cancellation_terms(
            reservation.amount,
            reservation.starts_at,
            now,
            confirmed=reservation.status is ReservationStatus.CONFIRMED,
        )
        if terms is None:
            raise TooLateToCancel(
                f"reservation {reservation_id} can no longer be cancelled: its performance is "
                f"on {reservation.starts_at.date().isoformat()}"
            )
        moved = reservation.moved_to(ReservationStatus.CANCELLED, now).model_copy(
            update={
                "cancellation_fee": terms.cancellation_fee,
                "refund_amount": terms.refund_amount,
            }
        )
        try:
            return _transition(reservation, moved, store, performances, now)
        except _LostRace:
            continue
    raise RuntimeError(f"reservation {reservation_id} kept changing under cancel")


def apply_seated_payment_outcome(
    event: Event, store: DocumentStore, performances: PerformanceDirectory, now: datetime
) -> SeatedReservation | None:
    """PaymentApproved → Confirmed; PaymentDeclined → Rejected with the seats given back.
    Idempotent and order-tolerant, as for general admission."""
    target = {
        EventType.PAYMENT_APPROVED: ReservationStatus.CONFIRMED,
        EventType.PAYMENT_DECLINED: ReservationStatus.REJECTED,
    }.get(event.event_type)
    if target is None:
        return None
    reservation_id = event.payment().reservation_id
    for _ in range(MAX_RACE_RETRIES):
        reservation = find_seated(reservation_id, store)
        if reservation is None or not reservation.can_become(target):
            return reservation
        try:
            return _transition(
                reservation, reservation.moved_to(target, now), store, performances, now
            )
        except _LostRace:
            continue
    raise RuntimeError(f"reservation {reservation_id} kept changing under {event.event_type}")


class _LostRace(Exception):
    """Someone else changed the reservation between our read and our write."""


_EVENT_OF: dict[ReservationStatus, EventType] = {
    ReservationStatus.CONFIRMED: EventType.RESERVATION_CONFIRMED,
    ReservationStatus.REJECTED: EventType.RESERVATION_REJECTED,
    ReservationStatus.CANCELLED: EventType.RESERVATION_CANCELLED,
}


def _transition(
    reservation: SeatedReservation,
    moved: SeatedReservation,
    store: DocumentStore,
    performances: PerformanceDirectory,
    now: datetime,
) -> SeatedReservation:
    """One batch: the new state (If-Match the ETag read), its event, and, when the seats come
    back, the seat items deleted and the counter raised. Then the allowance back."""
    partition = section_partition(moved.performance_id, moved.section_id)
    event = reservation_event(_EVENT_OF[moved.status], moved, now)
    operations: list = [
        Replace(moved.to_document(), if_match=reservation.etag),
        Create(event.to_document(PARTITION_FIELD, partition)),
    ]
    seats_back = reservation.holds_seats and not moved.holds_seats
    if seats_back:
        operations.append(Patch(COUNTER_ID, [Incr("availableSeats", moved.seats)]))
        operations.extend(Delete(seat_id) for seat_id in moved.seat_ids)
    try:
        stored = store.batch(PERFORMANCES.name, partition, operations)
    except BatchFailed as failure:
        if isinstance(failure.cause, (PreconditionFailed, Conflict)):
            raise _LostRace from None
        raise
    if seats_back:
        performance = performances.get(moved.performance_id, store)
        _give_allowance_back_sync(performance, moved.customer_id, moved.seats, store)
    return SeatedReservation.from_document(stored[0])
