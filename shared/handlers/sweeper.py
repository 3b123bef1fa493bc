"""The saga sweeper: payment deadlines, and sagas that stopped half-way (docs/resilience.md).

Run by a timer (functions/sagas.py). The store has no cross-partition query, so the sweeper goes
musical by musical (the catalog partition lists them, as `GET /musicals` does) and asks each
musical's partition two questions that its index answers:

1. Reserved reservations placed more than `repair_after` ago. Normally there are none, or only
   those whose payment is deferred. Each one is expired once its deadline has passed. Before
   that, its payment is read, and a payment that has stopped is driven on.
2. Reservations that moved on (Confirmed, Rejected, Cancelled, Expired) since the musical's
   cursor and at least `repair_after` ago. Each one is read once, with its payment and its
   notice, and driven on if a step is missing. The cursor (a small document in the control
   container) then moves past every one found at rest. One not yet at rest is read again on
   the next run, until it is.

A step is missing when its effect is. If a ReservationPlaced event was never relayed, or its
message was dead-lettered, there is no payment. If a PaymentApproved event was lost, the
reservation is still Reserved. If a cancel was lost, the payment has no cancel requested. If
a notice message was lost, there is no notice. So the sweeper needs no record of what was
published, which would cost a write per event. Every repair runs the handler the lost message
would have run (they are idempotent), directly rather than through the bus. Two reasons: a
message sent again with the same id inside Service Bus's duplicate-detection window is
dropped, and the bus may be what failed.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.domain.events import Event, EventType, event_id, payment_event, reservation_event
from shared.domain.models import (
    CatalogEntry,
    Notice,
    NoticeStatus,
    Payment,
    PaymentStatus,
    Reservation,
    ReservationStatus,
)
from shared.domain.timestamps import format_timestamp
from shared.handlers.notices import NoticeDeps, notice_id_of, notify_payment_outcome
from shared.handlers.payments import (
    PaymentDeps,
    advance,
    on_reservation_cancelled,
    on_reservation_placed,
)
from shared.handlers.reservations import (
    ReservationDeps,
    apply_payment_outcome,
    expire_reservation,
)
from shared.ports import Clock, Condition, Document, DocumentStore, NotFound
from shared.topology import CONTROL, MUSICALS, NOTICES, PAYMENTS

log = logging.getLogger("outerpark.sweeper")

_PAGE = 100


class Repair(StrEnum):
    """What the sweeper found wrong with a saga, and drove on."""

    EXPIRED = "payment-deadline-passed"
    PLACEMENT_NOT_HANDLED = "placement-not-handled"
    PAYMENT_STALLED = "payment-stalled"
    APPROVAL_NOT_APPLIED = "approval-not-applied"
    DECLINE_NOT_APPLIED = "decline-not-applied"
    CANCEL_NOT_HANDLED = "cancel-not-handled"
    CANCEL_STALLED = "cancel-stalled"
    NOTICE_NOT_SENT = "notice-not-sent"


@dataclass(frozen=True)
class SweepPolicy:
    payment_deadline: timedelta
    repair_after: timedelta
    """A saga step with no progress for this long is driven again."""


@dataclass(frozen=True)
class SweepDeps:
    store: DocumentStore
    reservations: ReservationDeps
    payments: PaymentDeps
    notices: NoticeDeps
    clock: Clock
    policy: SweepPolicy


@dataclass
class SweepReport:
    musicals: int = 0
    examined: int = 0
    repairs: Counter[Repair] = field(default_factory=Counter)
    failures: int = 0

    def to_log(self) -> dict[str, Any]:
        return {
            "musicals": self.musicals,
            "examined": self.examined,
            "repaired": sum(self.repairs.values()),
            "repairs": {repair.value: count for repair, count in self.repairs.items()},
            "failures": self.failures,
        }


def sweep(deps: SweepDeps) -> SweepReport:
    """One run over every musical. A failure is logged and counted, and the run goes on."""
    report = SweepReport()
    now = deps.clock.now()
    for musical_id in _musical_ids(deps.store):
        report.musicals += 1
        try:
            _sweep_musical(musical_id, deps, now, report)
        except Exception:
            report.failures += 1
            log.exception("sweeping musical %s failed", musical_id, extra={"musicalId": musical_id})
    log.info("saga sweep done", extra=report.to_log())
    return report


def _sweep_musical(musical_id: str, deps: SweepDeps, now: datetime, report: SweepReport) -> None:
    quiet_since = format_timestamp(now - deps.policy.repair_after)
    reserved = [
        Condition("type", "=", Reservation.DOC_TYPE),
        Condition("status", "=", ReservationStatus.RESERVED.value),
        Condition("createdAt", "<", quiet_since),
    ]
    for reservation in list(_reservations(deps.store, musical_id, reserved)):
        report.examined += 1
        _guarded(report, reservation, lambda r=reservation: _drive_reserved(r, deps, now))

    cursor_id = f"sweeper.{musical_id}"
    since = _cursor(deps.store, cursor_id)
    moved_on = [
        Condition("type", "=", Reservation.DOC_TYPE),
        Condition("status", "!=", ReservationStatus.RESERVED.value),
        Condition("updatedAt", "<", quiet_since),
    ]
    if since is not None:
        moved_on.append(Condition("updatedAt", ">=", since))
    held: str | None = None
    examined = False
    for reservation in list(_reservations(deps.store, musical_id, moved_on)):
        examined = True
        report.examined += 1
        at_rest = _guarded(
            report, reservation, lambda r=reservation: _drive_moved_on(r, deps, now, report)
        )
        if not at_rest:
            stamp = format_timestamp(reservation.updated_at)
            held = stamp if held is None else min(held, stamp)
    if examined:
        deps.store.upsert(CONTROL.name, {"id": cursor_id, "since": held or quiet_since})


def _guarded(report: SweepReport, reservation: Reservation, step: Any) -> Any:
    """Run one saga's check; a failure is counted and logged, and the saga counts as not at
    rest (it is looked at again next time)."""
    try:
        outcome = step()
    except Exception:
        report.failures += 1
        log.exception(
            "driving the saga of %s on failed; trying again next time",
            reservation.id,
            extra={"reservationId": reservation.id},
        )
        return False
    if isinstance(outcome, Repair):
        _repaired(report, reservation, outcome)
    return outcome


def _repaired(report: SweepReport, reservation: Reservation, repair: Repair) -> None:
    report.repairs[repair] += 1
    log.warning(
        "saga of %s driven on: %s",
        reservation.id,
        repair.value,
        extra={
            "reservationId": reservation.id,
            "musicalId": reservation.musical_id,
            "repair": repair.value,
            "correlationId": reservation.correlation_id,
        },
    )


def _drive_reserved(reservation: Reservation, deps: SweepDeps, now: datetime) -> Repair | None:
    """A reservation still Reserved `repair_after` after it was placed."""
    payment = _payment(reservation.id, deps.store)
    deadline = reservation.created_at + deps.policy.payment_deadline
    if (
        payment is not None
        and payment.status is PaymentStatus.APPROVED
        and payment.updated_at <= deadline
    ):  # in time; its PaymentApproved was lost
        event = _payment_outcome(payment, EventType.PAYMENT_APPROVED, deps.store)
        apply_payment_outcome(event, deps.reservations)
        return Repair.APPROVAL_NOT_APPLIED
    if payment is not None and payment.status is PaymentStatus.DECLINED:
        event = _payment_outcome(payment, EventType.PAYMENT_DECLINED, deps.store)
        apply_payment_outcome(event, deps.reservations)
        return Repair.DECLINE_NOT_APPLIED
    if now >= deadline:
        # The payment side hears of it by the ReservationExpired event, and cancels whatever
        # charge landed meanwhile (or lands later).
        expire_reservation(reservation.id, deps.reservations)
        return Repair.EXPIRED
    if payment is None:
        placed = reservation_event(
            EventType.RESERVATION_PLACED, reservation, reservation.created_at
        )
        on_reservation_placed(placed, deps.payments)
        return Repair.PLACEMENT_NOT_HANDLED
    if not payment.is_settled and _stalled(payment, now, deps.policy.repair_after):
        advance(reservation.id, deps.payments)
        return Repair.PAYMENT_STALLED
    return None


def _drive_moved_on(
    reservation: Reservation, deps: SweepDeps, now: datetime, report: SweepReport
) -> bool:
    """Is the saga of a reservation that left Reserved at rest? If not, drive it on."""
    payment = _payment(reservation.id, deps.store)
    ended = reservation.status in (ReservationStatus.CANCELLED, ReservationStatus.EXPIRED)
    if ended and (payment is None or not payment.cancel_requested):
        on_reservation_cancelled(_ending_event(reservation, deps.store), deps.payments)
        _repaired(report, reservation, Repair.CANCEL_NOT_HANDLED)
        return False  # read again next time, to see it settle
    if payment is None:
        return True  # Confirmed and Rejected come from a payment: nothing here to drive
    if not payment.is_settled:
        if _stalled(payment, now, deps.policy.repair_after):
            advance(reservation.id, deps.payments)
            _repaired(report, reservation, Repair.CANCEL_STALLED)
        return False
    event = _payment_notice_event(payment, deps.store)
    if event is None or _notice_sent(event, deps):
        return True
    notify_payment_outcome(event, deps.notices)
    _repaired(report, reservation, Repair.NOTICE_NOT_SENT)
    return False


def _stalled(payment: Payment, now: datetime, after: timedelta) -> bool:
    """No write for `after`, and no scheduled retry due within it: the step stopped."""
    last = payment.updated_at
    if payment.next_attempt_at is not None and payment.next_attempt_at > last:
        last = payment.next_attempt_at
    return now - last >= after


def _notice_sent(event: Event, deps: SweepDeps) -> bool:
    """Sent, or being sent now (a lease that has not run out): nothing to do."""
    notice_id = notice_id_of(event, deps.store)
    if notice_id is None:
        return True
    try:
        document = deps.store.read(NOTICES.name, event.payment().customer_id, notice_id)
    except NotFound:
        return False
    notice = Notice.from_document(document)
    if notice.status is NoticeStatus.SENT:
        return True
    return notice.sending_until is not None and notice.sending_until > deps.clock.now()


_OUTCOME_EVENT: dict[PaymentStatus, EventType] = {
    PaymentStatus.APPROVED: EventType.PAYMENT_APPROVED,
    PaymentStatus.DECLINED: EventType.PAYMENT_DECLINED,
    PaymentStatus.CANCELLED: EventType.PAYMENT_CANCELLED,
}


def _payment_notice_event(payment: Payment, store: DocumentStore) -> Event | None:
    event_type = _OUTCOME_EVENT.get(payment.status)
    return None if event_type is None else _payment_outcome(payment, event_type, store)


def _payment_outcome(payment: Payment, event_type: EventType, store: DocumentStore) -> Event:
    """The payment's stored outbox event of that type (its reason included), or the same event
    made again from the payment if it is gone (outbox events expire after a week)."""
    stored = _read(store, PAYMENTS.name, payment.reservation_id, event_id(payment.id, event_type))
    if stored is not None:
        return Event.model_validate(stored)
    return payment_event(event_type, payment, payment.updated_at)


def _ending_event(reservation: Reservation, store: DocumentStore) -> Event:
    event_type = (
        EventType.RESERVATION_EXPIRED
        if reservation.status is ReservationStatus.EXPIRED
        else EventType.RESERVATION_CANCELLED
    )
    stored = _read(
        store, MUSICALS.name, reservation.musical_id, event_id(reservation.id, event_type)
    )
    if stored is not None:
        return Event.model_validate(stored)
    return reservation_event(event_type, reservation, reservation.updated_at)


def _payment(reservation_id: str, store: DocumentStore) -> Payment | None:
    document = _read(store, PAYMENTS.name, reservation_id, reservation_id)
    return None if document is None else Payment.from_document(document)


def _read(store: DocumentStore, container: str, partition: str, item_id: str) -> Document | None:
    try:
        return store.read(container, partition, item_id)
    except NotFound:
        return None


def _cursor(store: DocumentStore, cursor_id: str) -> str | None:
    document = _read(store, CONTROL.name, cursor_id, cursor_id)
    return None if document is None else document.get("since")


def _musical_ids(store: DocumentStore) -> Iterator[str]:
    where = [Condition("type", "=", CatalogEntry.DOC_TYPE)]
    for document in _all(store, CatalogEntry.PARTITION, where):
        yield document["id"]


def _reservations(
    store: DocumentStore, musical_id: str, where: Sequence[Condition]
) -> Iterator[Reservation]:
    for document in _all(store, musical_id, where):
        yield Reservation.from_document(document)


def _all(store: DocumentStore, partition: str, where: Sequence[Condition]) -> Iterator[Document]:
    """Every item of a musicals partition that matches, page by page. (The callers read them
    all before acting on any: a repair may move an item out of the query's pages.)"""
    continuation: str | None = None
    while True:
        page = store.query(MUSICALS.name, partition, where, limit=_PAGE, continuation=continuation)
        yield from page.items
        if page.continuation is None:
            return
        continuation = page.continuation
