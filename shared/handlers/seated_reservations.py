"""Placing a seated reservation: the seats asked for, or the best available ones, held with
the reservation and its event, or nothing changed (docs/seating.md).

The hold is one transactional batch in the section partition: the held seats (one item per
seat, id = seat id), the section's counter, the reservation and its outbox event. A seat held
twice conflicts inside the batch, so nothing is ever sold twice. The customer's cap per
performance spans sections: it is taken first, from the allowance (`seat_allowance`), and
given back when no reservation came of the request. Later changes: `seated_changes`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from shared.domain.caller import Caller
from shared.domain.errors import NotEnoughSeats, NotFoundError, SeatLimitReached
from shared.domain.events import EventType, reservation_event
from shared.domain.ids import (
    idempotency_record_id,
    new_reservation_suffix,
    seated_partition_of,
    seated_reservation_id,
    section_partition,
)
from shared.domain.models import Reservation, ReservationStatus
from shared.domain.performances import (
    COUNTER_ID,
    PARTITION_FIELD,
    AllowanceHold,
    HeldSeat,
    Performance,
    SeatedOrder,
    SeatedReservation,
)
from shared.domain.seating import Seat, best_available
from shared.domain.seating_commands import ReserveBestAvailable, ReserveSeats, SeatedCommand
from shared.domain.seating_errors import InvalidSeatRequest, SeatsTaken
from shared.handlers.performances import PerformanceDirectory
from shared.handlers.reservation_reads import find_seated_async
from shared.handlers.reservations import Placed, read_key_record
from shared.handlers.seat_allowance import give_allowance_back_async, take_allowance
from shared.handlers.seat_book import SeatBook
from shared.handlers.seated_orders import command_of, hold_order, placed_by
from shared.optimistic import LostRace, retry_on_race_async
from shared.ports import (
    AsyncDocumentStore,
    BatchFailed,
    BatchOperation,
    Clock,
    Condition,
    Conflict,
    Create,
    Document,
    DocumentStore,
    Incr,
    NotFound,
    Patch,
    PreconditionFailed,
    written,
)
from shared.topology import IDEMPOTENCY, PERFORMANCES


async def _admit_all() -> None:
    """Take every new order (no load shedding)."""


@dataclass(frozen=True)
class SeatedDeps:
    """What the seated reservation use cases need, built once by shared.bootstrap. `async_store`
    is the same store as `store`, awaited on the hot path; `performances` caches performances
    and what the process knows of their seats. `admit` may refuse a new order (load shedding)."""

    store: DocumentStore
    async_store: AsyncDocumentStore
    performances: PerformanceDirectory
    clock: Clock
    admit: Callable[[], Awaitable[None]] = _admit_all


async def place_seated_reservation(
    command: SeatedCommand,
    caller: Caller,
    correlation_id: str,
    idempotency_key: str | None,
    deps: SeatedDeps,
) -> Placed:
    """Hold exactly the seats asked for (or the best available ones) and record the
    reservation and its event, or refuse and change nothing.

    With an Idempotency-Key, the first request's body is the one carried out and a replay
    answers with its reservation before anything else (the cap included).
    """
    store, performances, admit = deps.async_store, deps.performances, deps.admit
    now = deps.clock.now()
    performance = await performances.get_async(command.performance_id, store)
    _validate(command, performance)

    def request(suffix: str, of: Performance) -> _Request:
        return _Request(of, caller, correlation_id, suffix, store, performances.seats, now)

    if idempotency_key is None:
        await admit()
        return await _place(command, request(new_reservation_suffix(), performance))
    record_id = idempotency_record_id(idempotency_key)

    async def attempt() -> Placed:
        order = await read_key_record(record_id, caller, SeatedOrder, store)
        if isinstance(order, Reservation):  # the key's first request placed a general one
            return Placed(order, created=False)
        if order is not None:
            existing = await placed_by(order, store)
            if existing is not None:
                return Placed(existing, created=False)
        await admit()
        try:
            order = await hold_order(order, record_id, caller, command, performance, store, now)
        except (Conflict, PreconditionFailed, NotFound):
            raise LostRace from None  # another request with this key moved first: look again
        first = await performances.get_async(order.performance_id, store)
        try:
            ordered = command_of(order)
            _validate(ordered, first)
            return await _place(ordered, request(order.suffix, first), _OrderPin(order, store))
        except (NotEnoughSeats, SeatsTaken, SeatLimitReached, NotFoundError, InvalidSeatRequest):
            # A parallel request with this key may have placed the reservation while this one
            # lost the seats to it: then that reservation is the answer, and the key stays.
            placed = await placed_by(order, store)
            if placed is not None:
                return Placed(placed, created=False)
            with contextlib.suppress(NotFound, PreconditionFailed):
                await store.delete_async(
                    IDEMPOTENCY.name, caller.customer_id, order.id, if_match=order.etag
                )
            raise

    return await retry_on_race_async(attempt, f"Idempotency-Key {idempotency_key!r}")


def _validate(command: SeatedCommand, performance: Performance) -> None:
    seat_map = performance.seat_map
    if isinstance(command, ReserveSeats):
        try:
            seat_map.one_section(command.seat_ids)
        except ValueError as error:
            raise InvalidSeatRequest(str(error)) from None
    elif command.grade not in seat_map.grades:
        raise InvalidSeatRequest(f"no grade {command.grade!r} in this hall")


@dataclass(frozen=True)
class _Request:
    """One request's placing: what every step of it needs. `hold_key` is its allowance's hold,
    once taken (a capped performance)."""

    performance: Performance
    caller: Caller
    correlation_id: str
    suffix: str
    store: AsyncDocumentStore
    book: SeatBook
    now: datetime
    hold_key: str | None = None


async def _place(command: SeatedCommand, request: _Request, pin: _OrderPin | None = None) -> Placed:
    """The command (valid for the request's performance) carried out: the allowance taken,
    the seats held; the allowance given back when no reservation of this request came of it."""
    performance, caller, store = request.performance, request.caller, request.store
    if isinstance(command, ReserveSeats):
        section, seats = performance.seat_map.one_section(command.seat_ids)
        count, sections = len(seats), [section.id]
    else:
        count = command.seats
        sections = [s.id for s in performance.seat_map.sections_of(command.grade)]
    hold = AllowanceHold(seats=count, suffix=request.suffix, sections=sections, at=request.now)
    hold_key = await take_allowance(performance, caller, hold, store)
    request = replace(request, hold_key=hold_key)
    try:
        if isinstance(command, ReserveSeats):
            return await _hold(seats, request)
        return await _hold_best(command, request, pin)
    except _Kept as kept:  # the same request, replayed, placed it first: ours is not needed
        await give_allowance_back_async(performance.id, caller.customer_id, hold_key, count, store)
        return kept.placed
    except BaseException:
        await give_allowance_back_async(performance.id, caller.customer_id, hold_key, count, store)
        raise


class _Kept(Exception):
    """The hold did not create a reservation, but one exists already (an idempotent race)."""

    def __init__(self, placed: Placed) -> None:
        self.placed = placed


async def _hold(seats: Sequence[Seat], request: _Request) -> Placed:
    """One batch in the section partition: the seats, the counter, the reservation, its event."""
    performance, store, now = request.performance, request.store, request.now
    section_id = seats[0].section
    partition = section_partition(performance.id, section_id)
    reservation = SeatedReservation(
        id=seated_reservation_id(performance.id, section_id, request.suffix),
        musical_id=performance.musical_id,
        musical_title=performance.musical_title,
        customer_id=request.caller.customer_id,
        seats=len(seats),
        amount=sum(performance.seat_map.price_of(seat) for seat in seats),
        status=ReservationStatus.RESERVED,
        correlation_id=request.correlation_id,
        created_at=now,
        updated_at=now,
        seat_limit=performance.max_seats_per_customer,
        performance_id=performance.id,
        section_id=section_id,
        starts_at=performance.starts_at,
        seat_ids=[seat.id for seat in seats],
        allowance_hold=request.hold_key,
    )
    held: list[BatchOperation] = [
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
    operations: list[BatchOperation] = [
        *held,
        Patch(
            COUNTER_ID,
            [Incr("availableSeats", -len(seats)), Incr("version", 1)],
            condition=[Condition("availableSeats", ">=", len(seats))],
        ),
        Create(reservation.to_document()),
        Create(placed.to_document(PARTITION_FIELD, partition)),
    ]

    async def attempt() -> list[Document | None]:
        try:
            return await store.batch_async(PERFORMANCES.name, partition, operations)
        except BatchFailed as failure:
            if failure.index < len(held) and isinstance(failure.cause, Conflict):
                taken = await _held_by_others(partition, seats, reservation.id, store)
                if taken:
                    raise SeatsTaken(taken) from None
                found = await find_seated_async(reservation.id, store)
                if found is not None:  # held by this very reservation: a replay won the race
                    raise _Kept(Placed(found, created=False)) from None
                raise LostRace from None  # freed again since the batch: hold them again
            if failure.index == len(held) + 1 and isinstance(failure.cause, Conflict):
                raise _Kept(await _existing(reservation.id, store)) from None
            if failure.index == len(held) and isinstance(failure.cause, PreconditionFailed):
                raise NotEnoughSeats(
                    f"section {section_id} has fewer than {len(seats)} seats free"
                ) from None
            raise

    stored = await retry_on_race_async(attempt, f"the seats {reservation.seat_ids}")
    reservation.etag = written(stored, len(held) + 1)["_etag"]
    counter = written(stored, len(held))
    request.book.add_held(partition, seats, counter["version"])
    return Placed(reservation, created=True)


async def _hold_best(
    command: ReserveBestAvailable, request: _Request, pin: _OrderPin | None
) -> Placed:
    """Read the held seats of the grade's sections, choose, hold; a lost race picks again.
    Seats other requests of this process are holding count as taken (`SeatBook`).

    Picking again ends: a race is lost only to a hold that took seats of the grade, so the
    grade sells out first. Under an Idempotency-Key the section is the key's (`_OrderPin`)."""
    performance, book = request.performance, request.book
    grade_sections = [section.id for section in performance.seat_map.sections_of(command.grade)]
    while True:
        within = pin.bound_to if pin is not None else None
        section_ids = grade_sections if within is None else [within]
        taken = await book.taken(performance.id, section_ids, request.store)
        choice = best_available(
            performance.seat_map, command.grade, command.seats, taken, within=within
        )
        if choice is None:
            raise NotEnoughSeats(
                f"no section of grade {command.grade} has {command.seats} seats free"
            )
        section_id = choice[0].section
        if pin is not None:
            await pin.choose(section_id)
        partition = section_partition(performance.id, section_id)
        try:
            with book.claiming(partition, choice):
                return await _hold(choice, request)
        except (SeatsTaken, NotEnoughSeats):
            book.forget(partition)  # someone held some of them after our read: pick again


class _OrderPin:
    """Best available under an Idempotency-Key: the reservation's id names its section, which
    is chosen when the seats are. The key's order records the chosen section (as the
    reservation id) before any seat is held, so that every request with the key holds in that
    section under that id: only one of them can create the reservation.

    Every write of the order is conditional on the ETag its writer read, and a request rewrites
    the order before it holds anything. So while the request that recorded the section still
    has the order's ETag, no other request with the key holds seats: that one may move the
    section when its hold there lost. Any other holds in the section it found recorded."""

    def __init__(self, order: SeatedOrder, store: AsyncDocumentStore) -> None:
        self._order, self._store = order, store
        self._recorded_here = False

    @property
    def bound_to(self) -> str | None:
        """The section this request must hold in: the recorded one, unless it recorded it."""
        return None if self._recorded_here else self._section

    @property
    def _section(self) -> str | None:
        reservation_id = self._order.reservation_id
        located = seated_partition_of(reservation_id) if reservation_id else None
        return located[1] if located else None

    async def choose(self, section_id: str) -> None:
        """Record `section_id` as the key's section (unless it is). LostRace when another
        request with the key changed the order meanwhile."""
        if self._section == section_id:
            return
        order = self._order
        reservation_id = seated_reservation_id(order.performance_id, section_id, order.suffix)
        pinned = order.model_copy(update={"reservation_id": reservation_id})
        try:
            document = await self._store.replace_async(
                IDEMPOTENCY.name, pinned.to_document(), if_match=order.etag
            )
        except (PreconditionFailed, NotFound):
            raise LostRace from None
        self._order = SeatedOrder.from_document(document)
        self._recorded_here = True


async def _held_by_others(
    partition: str, seats: Sequence[Seat], reservation_id: str, store: AsyncDocumentStore
) -> list[str]:
    """The seats among `seats` that another reservation holds (re-read, all at once, after a
    conflict)."""
    held = await store.read_many_async(PERFORMANCES.name, [(partition, seat.id) for seat in seats])
    return [document["id"] for document in held if document.get("reservationId") != reservation_id]


async def _existing(reservation_id: str, store: AsyncDocumentStore) -> Placed:
    found = await find_seated_async(reservation_id, store)
    if found is None:
        raise NotFoundError(f"no reservation {reservation_id!r}")
    return Placed(found, created=False)
