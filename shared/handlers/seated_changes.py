"""Changes of a seated reservation after it is placed: cancelling with a fee, expiring an
unpaid one, applying a payment outcome (docs/seating.md).

Each is one transactional batch in the reservation's section partition: its new state
(If-Match the ETag read), its event and, when the seats come back, the seat items deleted and
the section's counter raised; then, when the seats came back and the reservation counted
against the customer's cap, its allowance hold given back (another partition).
"""

from __future__ import annotations

from datetime import datetime

from shared.domain.caller import Caller
from shared.domain.events import PAYMENT_OUTCOME_STATUS, STATUS_EVENT, Event, reservation_event
from shared.domain.fees import cancellation_terms
from shared.domain.ids import section_partition
from shared.domain.models import ReservationStatus
from shared.domain.performances import COUNTER_ID, PARTITION_FIELD, SeatedReservation
from shared.domain.seating_errors import TooLateToCancel
from shared.handlers.reservation_reads import find_seated, get_seated_reservation
from shared.handlers.seat_allowance import give_allowance_back
from shared.handlers.seated_reservations import SeatedDeps
from shared.optimistic import LostRace, retry_on_race
from shared.ports import (
    BatchFailed,
    BatchOperation,
    Conflict,
    Create,
    Delete,
    DocumentStore,
    Incr,
    Patch,
    PreconditionFailed,
    Replace,
    written,
)
from shared.topology import PERFORMANCES


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
