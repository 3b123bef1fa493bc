"""Seated reservations: holding chosen seats of one performance, cancelling with a fee, expiring
unpaid ones, and applying payment outcomes to them (docs/seating.md).

Every change is one transactional batch in the reservation's section partition: the held
seats (one item per seat, id = seat id), the section's counter, the reservation and its outbox
event. A seat held twice conflicts inside the batch, so nothing is ever sold twice. What spans
sections (a customer's cap per performance) is an allowance item in the performance partition:
a hold is added there before the seats are held, by a patch guarded by the cap, and removed
when the hold fails or the seats come back, by a patch guarded by the hold's presence (so a
give-back repeated after a crash counts once; `shared.handlers.sweeper` repairs one that a
crash skipped).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from shared.domain.caller import Caller
from shared.domain.errors import (
    NotEnoughSeats,
    NotFoundError,
    SeatLimitReached,
)
from shared.domain.events import (
    PAYMENT_OUTCOME_STATUS,
    STATUS_EVENT,
    Event,
    EventType,
    reservation_event,
)
from shared.domain.fees import cancellation_terms
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
    SeatAllowance,
    SeatedOrder,
    SeatedReservation,
)
from shared.domain.seating import Seat, best_available
from shared.domain.seating_commands import ReserveBestAvailable, ReserveSeats
from shared.domain.seating_errors import InvalidSeatRequest, SeatsTaken, TooLateToCancel
from shared.domain.timestamps import format_timestamp
from shared.handlers.performances import PerformanceDirectory
from shared.handlers.reservation_reads import find_reservation, find_reservation_async
from shared.handlers.reservations import Placed, hold_key_record
from shared.handlers.seat_book import SeatBook
from shared.optimistic import LostRace, retry_on_race, retry_on_race_async
from shared.ports import (
    AsyncDocumentStore,
    BatchFailed,
    BatchOperation,
    Clock,
    Condition,
    Conflict,
    Create,
    Delete,
    Document,
    DocumentStore,
    Incr,
    NotFound,
    Patch,
    PatchOperation,
    PreconditionFailed,
    Remove,
    Replace,
    Set,
    written,
)
from shared.topology import IDEMPOTENCY, PERFORMANCES

SeatedCommand = ReserveSeats | ReserveBestAvailable


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
        order = await _read_order(record_id, caller, store)
        if isinstance(order, Reservation):  # the key's first request placed a general one
            return Placed(order, created=False)
        if order is not None:
            existing = await _placed_by(order, store)
            if existing is not None:
                return Placed(existing, created=False)
        await admit()
        try:
            order = await _hold_order(order, record_id, caller, command, performance, store, now)
        except (Conflict, PreconditionFailed, NotFound):
            raise LostRace from None  # another request with this key moved first: look again
        first = await performances.get_async(order.performance_id, store)
        try:
            ordered = _command_of(order)
            _validate(ordered, first)
            return await _place(ordered, request(order.suffix, first), _OrderPin(order, store))
        except (NotEnoughSeats, SeatsTaken, SeatLimitReached, NotFoundError, InvalidSeatRequest):
            # A parallel request with this key may have placed the reservation while this one
            # lost the seats to it: then that reservation is the answer, and the key stays.
            placed = await _placed_by(order, store)
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
    hold_key = await _take_allowance(performance, caller, hold, store)
    request = replace(request, hold_key=hold_key)
    try:
        if isinstance(command, ReserveSeats):
            return await _hold(seats, request)
        return await _hold_best(command, request, pin)
    except _Kept as kept:  # the same request, replayed, placed it first: ours is not needed
        await _give_allowance_back(performance.id, caller.customer_id, hold_key, count, store)
        return kept.placed
    except BaseException:
        await _give_allowance_back(performance.id, caller.customer_id, hold_key, count, store)
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


# --------------------------------------------------------------------------- the allowance


async def _take_allowance(
    performance: Performance, caller: Caller, hold: AllowanceHold, store: AsyncDocumentStore
) -> str | None:
    """Count `hold.seats` more seats against the customer's cap for this performance, under a
    new hold key (returned), or refuse. None when the performance has no cap."""
    cap = performance.max_seats_per_customer
    if cap is None:
        return None
    count = hold.seats
    if count > cap:
        raise SeatLimitReached(f"at most {cap} seats per customer for this performance")
    allowance_id = SeatAllowance.id_for(caller.customer_id)
    key = SeatAllowance.new_hold_key()

    async def attempt() -> str:
        try:
            await store.batch_async(
                PERFORMANCES.name,
                performance.id,
                [
                    Patch(
                        allowance_id,
                        [
                            Incr("seats", count),
                            Set(f"holds.{key}", hold.to_json_dict()),
                            Set("updatedAt", format_timestamp(hold.at)),
                        ],
                        condition=[Condition("seats", "<=", cap - count)],
                    )
                ],
            )
            return key
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
            holds={key: hold},
            updated_at=hold.at,
        )
        try:
            await store.create_async(PERFORMANCES.name, first.to_document())
        except Conflict:
            raise LostRace from None  # created meanwhile by a parallel request: patch it
        return key

    return await retry_on_race_async(attempt, f"the seat allowance of {caller.customer_id}")


def _give_back(hold_key: str, seats: int) -> tuple[list[PatchOperation], list[Condition]]:
    """The patch that gives a hold's seats back, and its condition: only while the hold is
    there, so that doing it again (after a crash, by the sweeper) changes nothing."""
    return (
        [Remove(f"holds.{hold_key}"), Incr("seats", -seats)],
        [Condition(f"holds.{hold_key}.seats", "=", seats)],
    )


async def _give_allowance_back(
    performance_id: str,
    customer_id: str,
    hold_key: str | None,
    seats: int,
    store: AsyncDocumentStore,
) -> None:
    if hold_key is None:
        return
    operations, condition = _give_back(hold_key, seats)
    with contextlib.suppress(BatchFailed):  # given back already (or never taken)
        await store.batch_async(
            PERFORMANCES.name,
            performance_id,
            [Patch(SeatAllowance.id_for(customer_id), operations, condition)],
        )


def give_allowance_back(
    performance_id: str, customer_id: str, hold_key: str, seats: int, store: DocumentStore
) -> bool:
    """Give a hold's seats back to the customer's allowance; False when there was nothing to
    give back (done before)."""
    operations, condition = _give_back(hold_key, seats)
    allowance_id = SeatAllowance.id_for(customer_id)
    try:
        store.patch(PERFORMANCES.name, performance_id, allowance_id, operations, condition)
    except (PreconditionFailed, NotFound):
        return False
    return True


# --------------------------------------------------------------------------- idempotency


async def _read_order(
    record_id: str, caller: Caller, store: AsyncDocumentStore
) -> SeatedOrder | Reservation | None:
    """The key's order; or, when its first request was a general-admission one, the
    reservation it placed (LostRace while it has not: the key is taken)."""
    try:
        document = await store.read_async(IDEMPOTENCY.name, caller.customer_id, record_id)
    except NotFound:
        return None
    if document.get("type") == SeatedOrder.DOC_TYPE:
        return SeatedOrder.from_document(document)
    general = await find_reservation_async(document["reservationId"], store)
    if general is None:
        raise LostRace
    return general


async def _placed_by(order: SeatedOrder, store: AsyncDocumentStore) -> SeatedReservation | None:
    """The reservation the key's first request placed, if it was placed. An order names its
    reservation before any seat is held (best available: once its section is chosen)."""
    if order.reservation_id is None:
        return None
    return await find_seated_async(order.reservation_id, store)


def find_seated_by_suffix(
    performance_id: str, section_ids: Sequence[str], suffix: str, store: DocumentStore
) -> SeatedReservation | None:
    """`find_by_suffix` for the sweeper: a point read per section until found."""
    for section_id in section_ids:
        found = find_seated(seated_reservation_id(performance_id, section_id, suffix), store)
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
    """Create the key's record, or rewrite the existing one (see `hold_key_record`)."""

    def fresh() -> SeatedOrder:
        suffix = new_reservation_suffix()
        seat_ids: list[str] | None = None
        grade: str | None = None
        reservation_id: str | None = None  # best available: known once its section is chosen
        if isinstance(command, ReserveSeats):
            seat_ids, seats = command.seat_ids, len(command.seat_ids)
            section = Seat.parse(seat_ids[0]).section
            reservation_id = seated_reservation_id(performance.id, section, suffix)
        else:
            grade, seats = command.grade, command.seats
        return SeatedOrder(
            id=record_id,
            customer_id=caller.customer_id,
            performance_id=performance.id,
            suffix=suffix,
            seat_ids=seat_ids,
            grade=grade,
            seats=seats,
            reservation_id=reservation_id,
            created_at=now,
        )

    return SeatedOrder.from_document(await hold_key_record(order, fresh, store))


def _command_of(order: SeatedOrder) -> SeatedCommand:
    if order.seat_ids is not None:
        return ReserveSeats(performance_id=order.performance_id, seat_ids=order.seat_ids)
    return ReserveBestAvailable(
        performance_id=order.performance_id, grade=order.grade or "", seats=order.seats
    )


# --------------------------------------------------------------------------- reads


def find_seated(reservation_id: str, store: DocumentStore) -> SeatedReservation | None:
    found = find_reservation(reservation_id, store)
    return found if isinstance(found, SeatedReservation) else None


async def find_seated_async(
    reservation_id: str, store: AsyncDocumentStore
) -> SeatedReservation | None:
    found = await find_reservation_async(reservation_id, store)
    return found if isinstance(found, SeatedReservation) else None


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
    reservation_id: str, caller: Caller, deps: SeatedDeps
) -> SeatedReservation:
    """Cancel: the seats back at once, the fee by the days left (kept only when Confirmed),
    refused on the day of the performance or after it, whatever the status."""
    store, now = deps.store, deps.clock.now()

    def attempt() -> SeatedReservation:
        reservation = get_seated_reservation(reservation_id, caller, store)
        if not reservation.cancel_changes_it():
            return reservation
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
        moved = _moved_to(reservation, ReservationStatus.CANCELLED, now).model_copy(
            update={
                "cancellation_fee": terms.cancellation_fee,
                "refund_amount": terms.refund_amount,
            }
        )
        return _transition(reservation, moved, store, now)

    return retry_on_race(attempt, f"reservation {reservation_id}")


def apply_seated_payment_outcome(event: Event, deps: SeatedDeps) -> SeatedReservation | None:
    """PaymentApproved → Confirmed; PaymentDeclined → Rejected with the seats given back.
    Idempotent and order-tolerant, as for general admission."""
    target = PAYMENT_OUTCOME_STATUS.get(event.event_type)
    if target is None:
        return None
    return _move(event.payment().reservation_id, target, deps)


def expire_seated_reservation(reservation_id: str, deps: SeatedDeps) -> SeatedReservation | None:
    """Reserved → Expired, its seats given back, in one batch with its ReservationExpired event
    (the payment deadline passed). A reservation that has moved on meanwhile is left as it is."""
    return _move(reservation_id, ReservationStatus.EXPIRED, deps)


def _move(
    reservation_id: str, target: ReservationStatus, deps: SeatedDeps
) -> SeatedReservation | None:
    store, now = deps.store, deps.clock.now()

    def attempt() -> SeatedReservation | None:
        reservation = find_seated(reservation_id, store)
        if reservation is None or not reservation.can_become(target):
            return reservation
        return _transition(reservation, _moved_to(reservation, target, now), store, now)

    return retry_on_race(attempt, f"reservation {reservation_id}")


def _transition(
    reservation: SeatedReservation,
    moved: SeatedReservation,
    store: DocumentStore,
    now: datetime,
) -> SeatedReservation:
    """One batch: the new state (If-Match the ETag read), its event, and, when the seats come
    back, the seat items deleted and the counter raised. Then the allowance back (another
    partition: a crash in between leaves it taken until the sweeper gives it back)."""
    partition = section_partition(moved.performance_id, moved.section_id)
    event = reservation_event(STATUS_EVENT[moved.status], moved, now)
    operations: list[BatchOperation] = [
        Replace(moved.to_document(), if_match=reservation.etag),
        Create(event.to_document(PARTITION_FIELD, partition)),
    ]
    seats_back = reservation.holds_seats and not moved.holds_seats
    if seats_back:
        operations.append(
            Patch(COUNTER_ID, [Incr("availableSeats", moved.seats), Incr("version", 1)])
        )
        operations.extend(Delete(seat_id) for seat_id in moved.seat_ids)
    try:
        stored = store.batch(PERFORMANCES.name, partition, operations)
    except BatchFailed as failure:
        if isinstance(failure.cause, (PreconditionFailed, Conflict)):
            raise LostRace from None
        raise
    result = SeatedReservation.from_document(written(stored, 0))
    if seats_back and result.allowance_hold is not None:
        give_allowance_back(
            result.performance_id, result.customer_id, result.allowance_hold, result.seats, store
        )
    return result


def _moved_to(
    reservation: SeatedReservation, status: ReservationStatus, at: datetime
) -> SeatedReservation:
    moved = reservation.moved_to(status, at)
    assert isinstance(moved, SeatedReservation)  # model_copy keeps the class
    return moved
