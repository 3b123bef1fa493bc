"""Placing, reading and cancelling reservations, and applying payment outcomes to them.

Every change of a reservation is one transactional batch in its musical's partition: the
reservation, the musical's seat counter, the customer's seat holding (when the musical caps the
seats per customer) and the outbox event move together or not at all. Concurrent writers are
serialised by ETags and conditional patches: a lost race re-reads and decides again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from shared.domain.caller import Caller
from shared.domain.commands import PlaceReservation
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
from shared.domain.ids import (
    idempotency_record_id,
    is_musical_id,
    new_reservation_id,
)
from shared.domain.models import (
    IdempotencyRecord,
    Reservation,
    ReservationStatus,
    SeatHolding,
    StoredModel,
)
from shared.handlers.known_holdings import KnownHoldings
from shared.handlers.musicals import MusicalDirectory, MusicalFacts
from shared.handlers.reservation_reads import find_reservation, find_reservation_async
from shared.optimistic import LostRace, retry_on_race, retry_on_race_async
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
    Replace,
    written,
)
from shared.topology import IDEMPOTENCY, MUSICALS

Record = TypeVar("Record", bound=StoredModel)


async def _admit_all() -> None:
    """Take every new order (no load shedding)."""


@dataclass(frozen=True)
class ReservationDeps:
    """What the reservation use cases need, built once by shared.bootstrap. `async_store` is
    the same store as `store`, awaited on the hot path. `admit` may refuse a new order (load
    shedding); by default every order is taken."""

    store: DocumentStore
    async_store: AsyncDocumentStore
    musicals: MusicalDirectory
    clock: Clock
    admit: Callable[[], Awaitable[None]] = _admit_all
    holdings: KnownHoldings = field(default_factory=KnownHoldings)


@dataclass(frozen=True)
class Placed:
    reservation: Reservation
    created: bool


async def place_reservation(
    command: PlaceReservation,
    caller: Caller,
    correlation_id: str,
    idempotency_key: str | None,
    deps: ReservationDeps,
) -> Placed:
    """Hold the seats and record the reservation and its event, or refuse and change nothing.

    With an Idempotency-Key, the first request's body is the one carried out and every later
    request with that key answers with its reservation. A refused request (unknown musical,
    not enough seats) releases the key, so a rejected request leaves nothing behind.
    `deps.admit` is asked before a new order is taken and may refuse it (load shedding); a
    replay never is. Async: this is the hot path, and it runs on the worker's event loop.
    """
    store, musicals, admit, now = deps.async_store, deps.musicals, deps.admit, deps.clock.now()
    if not is_musical_id(command.musical_id):
        raise NotFoundError(f"no musical {command.musical_id!r}")
    if idempotency_key is None:
        await admit()
        reservation_id = new_reservation_id(command.musical_id)
        return await _place(command, reservation_id, caller, correlation_id, deps, now)
    await musicals.facts_async(command.musical_id, store)  # unknown: refused before any write
    record_id = idempotency_record_id(idempotency_key)

    async def attempt() -> Placed:
        record = await read_key_record(record_id, caller, IdempotencyRecord, store)
        if isinstance(record, Reservation):  # the key's first request placed a seated one
            return Placed(record, created=False)
        existing = await find_reservation_async(record.reservation_id, store) if record else None
        if existing is not None:
            return Placed(existing, created=False)
        await admit()
        try:
            record = await _hold_idempotency_key(record, record_id, caller, command, store, now)
        except (Conflict, PreconditionFailed, NotFound):
            raise LostRace from None  # another request with this key moved first: look again
        first_request = PlaceReservation(musical_id=record.musical_id, seats=record.seats)
        try:
            return await _place(
                first_request, record.reservation_id, caller, correlation_id, deps, now
            )
        except (NotEnoughSeats, SeatLimitReached, NotFoundError):
            # A parallel request with this key may have placed the reservation while this one
            # lost the seats to it: then that reservation is the answer, and the key stays.
            placed = await find_reservation_async(record.reservation_id, store)
            if placed is not None:
                return Placed(placed, created=False)
            await _release_idempotency_key(record, store)
            raise

    return await retry_on_race_async(attempt, f"Idempotency-Key {idempotency_key!r}")


async def _place(
    command: PlaceReservation,
    reservation_id: str,
    caller: Caller,
    correlation_id: str,
    deps: ReservationDeps,
    now: datetime,
) -> Placed:
    store = deps.async_store
    musical = await deps.musicals.facts_async(command.musical_id, store)
    seats = command.seats
    limit = musical.max_seats_per_customer
    if limit is not None and seats > limit:
        raise SeatLimitReached(f"musical {musical.id} allows at most {limit} seats per customer")
    reservation = Reservation(
        id=reservation_id,
        musical_id=musical.id,
        musical_title=musical.title,
        customer_id=caller.customer_id,
        seats=seats,
        amount=seats * musical.price,
        status=ReservationStatus.RESERVED,
        correlation_id=correlation_id,
        created_at=now,
        updated_at=now,
        seat_limit=limit,
    )
    placed = reservation_event(EventType.RESERVATION_PLACED, reservation, now)
    operations: list[Any] = [
        Patch(
            musical.id,
            [Incr("availableSeats", -seats)],
            condition=[Condition("availableSeats", ">=", seats)],
        ),
        Create(reservation.to_document()),
        Create(_event_document(placed, musical.id)),
    ]
    holding_key = (musical.id, caller.customer_id)
    holding_exists = holding_key in deps.holdings

    async def attempt() -> Placed:
        nonlocal holding_exists
        holding = _take_allowance(musical, caller, seats, holding_exists) if limit else []
        try:
            stored = await store.batch_async(MUSICALS.name, musical.id, [*operations, *holding])
        except BatchFailed as failure:
            if failure.index == HOLDING_INDEX and isinstance(failure.cause, NotFound | Conflict):
                holding_exists = isinstance(failure.cause, Conflict)  # first hold, or a race
                deps.holdings.learn(holding_key, holding_exists)
                raise LostRace from None
            return await _refused(failure, reservation, seats, store)
        reservation.etag = written(stored, 1)["_etag"]  # ours alone until returned: no copy needed
        if limit:
            deps.holdings.learn(holding_key, exists=True)
        return Placed(reservation, created=True)

    return await retry_on_race_async(attempt, f"the seat holding of {caller.customer_id}")


# Where the seat-holding operation sits in the placing batch.
HOLDING_INDEX = 3


def _take_allowance(
    musical: MusicalFacts, caller: Caller, seats: int, exists: bool
) -> list[Patch | Create]:
    """The batch operation that counts `seats` in the customer's holding, only while the
    holding stays within the musical's limit: a patch guarded by the limit, or, for the first
    reservation, the holding's creation (a parallel first reservation then conflicts)."""
    limit = musical.max_seats_per_customer
    assert limit is not None
    holding_id = SeatHolding.id_for(caller.customer_id)
    if exists:
        return [
            Patch(
                holding_id,
                [Incr("seats", seats)],
                condition=[Condition("seats", "<=", limit - seats)],
            )
        ]
    holding = SeatHolding(
        id=holding_id, musical_id=musical.id, customer_id=caller.customer_id, seats=seats
    )
    return [Create(holding.to_document())]


async def _refused(
    failure: BatchFailed, reservation: Reservation, seats: int, store: AsyncDocumentStore
) -> Placed:
    """What a failed placing batch means for the caller: 409 for its cause, 404, or the
    reservation an identical idempotent request placed first."""
    musical_id = reservation.musical_id
    if failure.index == 0 and isinstance(failure.cause, PreconditionFailed):
        raise NotEnoughSeats(f"musical {musical_id} has fewer than {seats} seats available")
    if failure.index == 0 and isinstance(failure.cause, NotFound):
        raise NotFoundError(f"no musical {musical_id!r}")
    if failure.index == HOLDING_INDEX and isinstance(failure.cause, PreconditionFailed):
        raise SeatLimitReached(
            f"musical {musical_id} allows at most {reservation.seat_limit} seats per customer; "
            f"{seats} more would go over it"
        )
    if failure.index == 1 and isinstance(failure.cause, Conflict):
        # The same idempotent request won a race against us: answer with its result.
        existing = await find_reservation_async(reservation.id, store)
        if existing is None:
            raise NotFoundError(f"no reservation {reservation.id!r}")
        return Placed(existing, created=False)
    raise failure


def get_reservation(reservation_id: str, caller: Caller, store: DocumentStore) -> Reservation:
    """The reservation, if the caller owns it or is an admin; otherwise it does not exist."""
    reservation = find_reservation(reservation_id, store)
    if reservation is None or not (
        caller.is_admin or reservation.customer_id == caller.customer_id
    ):
        raise NotFoundError(f"no reservation {reservation_id!r}")
    return reservation


def cancel_reservation(reservation_id: str, caller: Caller, deps: ReservationDeps) -> Reservation:
    """Cancel and give the seats back at once; the payment side hears of it by event."""
    store, now = deps.store, deps.clock.now()

    def attempt() -> Reservation:
        reservation = get_reservation(reservation_id, caller, store)
        if not reservation.cancel_changes_it():
            return reservation
        return _transition(reservation, ReservationStatus.CANCELLED, store, now)

    return retry_on_race(attempt, f"reservation {reservation_id}")


def apply_payment_outcome(event: Event, deps: ReservationDeps) -> Reservation | None:
    """PaymentApproved → Confirmed; PaymentDeclined → Rejected with the seats given back.

    Idempotent and order-tolerant: a reservation that can no longer make the move (already
    confirmed, cancelled meanwhile, …) is left as it is.
    """
    target = PAYMENT_OUTCOME_STATUS.get(event.event_type)
    if target is None:
        return None
    reservation_id = event.payment().reservation_id
    return _move_if_possible(reservation_id, target, deps.store, deps.clock.now())


def expire_reservation(reservation_id: str, deps: ReservationDeps) -> Reservation | None:
    """Reserved → Expired, its seats given back, in one batch with its ReservationExpired event
    (the payment deadline passed). A reservation that has moved on meanwhile is left as it is."""
    return _move_if_possible(
        reservation_id, ReservationStatus.EXPIRED, deps.store, deps.clock.now()
    )


def _move_if_possible(
    reservation_id: str, target: ReservationStatus, store: DocumentStore, now: datetime
) -> Reservation | None:
    """Move the reservation to `target` unless it is gone or can no longer make that move."""

    def attempt() -> Reservation | None:
        reservation = find_reservation(reservation_id, store)
        if reservation is None or not reservation.can_become(target):
            return reservation
        return _transition(reservation, target, store, now)

    return retry_on_race(attempt, f"reservation {reservation_id}")


def _transition(
    reservation: Reservation, target: ReservationStatus, store: DocumentStore, now: datetime
) -> Reservation:
    """One batch: the new state (guarded by the ETag we read), its event, and the seats back
    when the new state no longer holds them."""
    moved = reservation.moved_to(target, now)
    operations: list[BatchOperation] = [
        Replace(moved.to_document(), if_match=reservation.etag),
        Create(
            _event_document(reservation_event(STATUS_EVENT[target], moved, now), moved.musical_id)
        ),
    ]
    if reservation.holds_seats and not moved.holds_seats:
        operations.extend(_seats_back(moved))
    try:
        stored = store.batch(MUSICALS.name, moved.musical_id, operations)
    except BatchFailed as failure:
        if isinstance(failure.cause, (PreconditionFailed, Conflict)):
            raise LostRace from None
        raise
    return Reservation.from_document(written(stored, 0))


async def read_key_record(
    record_id: str, caller: Caller, kind: type[Record], store: AsyncDocumentStore
) -> Record | Reservation | None:
    """The key's record, of `kind` (a general-admission `IdempotencyRecord` or a seated
    `SeatedOrder`); or, when the key's first request was of the other kind, the reservation that
    request placed (LostRace while it has not: the key is taken)."""
    try:
        document = await store.read_async(IDEMPOTENCY.name, caller.customer_id, record_id)
    except NotFound:
        return None
    if document.get("type") == kind.DOC_TYPE:
        return kind.from_document(document)
    placed = document.get("reservationId")
    other = None if placed is None else await find_reservation_async(placed, store)
    if other is None:
        raise LostRace
    return other


async def _hold_idempotency_key(
    record: IdempotencyRecord | None,
    record_id: str,
    caller: Caller,
    command: PlaceReservation,
    store: AsyncDocumentStore,
    now: datetime,
) -> IdempotencyRecord:
    """Create the key's record, or rewrite the existing one (see `hold_key_record`)."""

    def fresh() -> IdempotencyRecord:
        return IdempotencyRecord(
            id=record_id,
            customer_id=caller.customer_id,
            musical_id=command.musical_id,
            seats=command.seats,
            reservation_id=new_reservation_id(command.musical_id),
            created_at=now,
        )

    return IdempotencyRecord.from_document(await hold_key_record(record, fresh, store))


async def hold_key_record(
    existing: StoredModel | None, fresh: Callable[[], StoredModel], store: AsyncDocumentStore
) -> Document:
    """An Idempotency-Key's record created (`fresh()`), or the existing one rewritten with the
    same content and a new ETag, so that an earlier request with the key that fails cannot
    release it under this one. Conflict or PreconditionFailed: another request moved first."""
    if existing is None:
        return await store.create_async(IDEMPOTENCY.name, fresh().to_document())
    return await store.replace_async(
        IDEMPOTENCY.name, existing.to_document(), if_match=existing.etag
    )


async def _release_idempotency_key(record: IdempotencyRecord, store: AsyncDocumentStore) -> None:
    with contextlib.suppress(NotFound, PreconditionFailed):
        await store.delete_async(
            IDEMPOTENCY.name, record.customer_id, record.id, if_match=record.etag
        )


def _seats_back(reservation: Reservation) -> list[Patch]:
    """The one place seats come back (cancel, reject, expiry): to the musical's count, and to
    the customer's allowance when the musical caps it."""
    operations = [Patch(reservation.musical_id, [Incr("availableSeats", reservation.seats)])]
    if reservation.seat_limit is not None:
        holding_id = SeatHolding.id_for(reservation.customer_id)
        operations.append(Patch(holding_id, [Incr("seats", -reservation.seats)]))
    return operations


def _event_document(event: Event, musical_id: str) -> Document:
    return event.to_document("musicalId", musical_id)
