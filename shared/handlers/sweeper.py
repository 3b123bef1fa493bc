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

A seated musical's reservations live in its performances' section partitions (docs/seating.md):
the same two questions are asked of each section partition of each performance that started less
than `SEATED_SWEEP_AFTER_START` ago. A seated reservation's deadline is never after its
performance's start, and when that start is near the young Reserved ones are looked at too, so
that they expire on time. A performance with a cap also has its customers' allowances checked: a
hold whose seats came back, or whose reservation never came to exist, after a crash between the
two partitions' writes, is given back.

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

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.domain.events import Event, EventType, event_id, payment_event, reservation_event
from shared.domain.ids import seated_reservation_id, section_partition
from shared.domain.models import (
    CatalogEntry,
    Notice,
    NoticeStatus,
    Payment,
    PaymentStatus,
    Reservation,
    ReservationStatus,
)
from shared.domain.performances import (
    AllowanceHold,
    SeatAllowance,
    SeatedMusical,
    SeatedReservation,
    payment_deadline,
)
from shared.domain.timestamps import format_timestamp
from shared.handlers.notices import NoticeDeps, notice_id_of, notify_payment_outcome
from shared.handlers.payments import (
    PaymentDeps,
    advance,
    on_reservation_cancelled,
    on_reservation_placed,
)
from shared.handlers.reservation_reads import find_seated
from shared.handlers.reservations import (
    ReservationDeps,
    apply_payment_outcome,
    expire_reservation,
)
from shared.handlers.seat_allowance import give_allowance_back
from shared.handlers.seated_changes import apply_seated_payment_outcome, expire_seated_reservation
from shared.handlers.seated_reservations import SeatedDeps
from shared.ports import (
    Clock,
    Condition,
    Document,
    DocumentStore,
    NotFound,
    PreconditionFailed,
    Set,
)
from shared.topology import CONTROL, MUSICALS, NOTICES, PAYMENTS, PERFORMANCES

log = logging.getLogger("outerpark.sweeper")

_PAGE = 100
# A seated performance's partitions are swept until this long after it started: by then every
# reservation of it has long left Reserved (its deadline is its start) and its saga is at rest.
SEATED_SWEEP_AFTER_START = timedelta(days=7)


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
    ALLOWANCE_NOT_RETURNED = "allowance-not-returned"


@dataclass(frozen=True)
class SweepPolicy:
    payment_deadline: timedelta
    repair_after: timedelta
    """A saga step with no progress for this long is driven again."""


@dataclass(frozen=True)
class SweepDeps:
    store: DocumentStore
    reservations: ReservationDeps
    seated: SeatedDeps
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
    musical = _read(deps.store, MUSICALS.name, musical_id, musical_id)
    if musical is not None and musical.get("type") == SeatedMusical.DOC_TYPE:
        _sweep_seated(SeatedMusical.from_document(musical), deps, now, report)
        return
    _sweep_partition(_Partition(MUSICALS.name, musical_id), deps, now, report)


@dataclass(frozen=True)
class _Partition:
    """Where reservations live: a musical's partition, or a seated performance's section's."""

    container: str
    key: str
    starts_at: datetime | None = None

    def cursor_id(self) -> str:
        return f"sweeper.{self.key}"


def _sweep_seated(
    musical: SeatedMusical, deps: SweepDeps, now: datetime, report: SweepReport
) -> None:
    for slot in musical.performances:
        if slot.starts_at < now - SEATED_SWEEP_AFTER_START:
            continue
        for section in musical.seat_map.sections:
            partition = section_partition(slot.id, section.id)
            _sweep_partition(
                _Partition(PERFORMANCES.name, partition, slot.starts_at), deps, now, report
            )
        if musical.max_seats_per_customer is not None:
            _guarded_run(report, slot.id, lambda p=slot.id: _check_allowances(p, deps, now, report))


def _sweep_partition(
    partition: _Partition, deps: SweepDeps, now: datetime, report: SweepReport
) -> None:
    quiet_since = format_timestamp(now - deps.policy.repair_after)
    starting_soon = (
        partition.starts_at is not None and partition.starts_at - now <= deps.policy.repair_after
    )
    reserved = [
        Condition("type", "=", Reservation.DOC_TYPE),
        Condition("status", "=", ReservationStatus.RESERVED.value),
        # Near its start, a seated reservation's deadline may come before `repair_after`.
        Condition("createdAt", "<", format_timestamp(now) if starting_soon else quiet_since),
    ]
    for reservation in list(_reservations(deps.store, partition, reserved)):
        report.examined += 1
        _guarded(report, reservation, lambda r=reservation: _drive_reserved(r, deps, now))

    cursor_id = partition.cursor_id()
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
    for reservation in list(_reservations(deps.store, partition, moved_on)):
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


def _guarded_run(report: SweepReport, subject: str, step: Any) -> None:
    try:
        step()
    except Exception:
        report.failures += 1
        log.exception("sweeping %s failed; trying again next time", subject)


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
    deadline = _deadline(reservation, deps.policy)
    if now < deadline and now - reservation.created_at < deps.policy.repair_after:
        return None  # young, looked at early only because its performance starts soon
    if (
        payment is not None
        and payment.status is PaymentStatus.APPROVED
        and payment.updated_at <= deadline
    ):  # in time; its PaymentApproved was lost
        event = _payment_outcome(payment, EventType.PAYMENT_APPROVED, deps.store)
        _apply_outcome(reservation, event, deps)
        return Repair.APPROVAL_NOT_APPLIED
    if payment is not None and payment.status is PaymentStatus.DECLINED:
        event = _payment_outcome(payment, EventType.PAYMENT_DECLINED, deps.store)
        _apply_outcome(reservation, event, deps)
        return Repair.DECLINE_NOT_APPLIED
    if now >= deadline:
        # The payment side hears of it by the ReservationExpired event, and cancels whatever
        # charge landed meanwhile (or lands later).
        if isinstance(reservation, SeatedReservation):
            expire_seated_reservation(reservation.id, deps.seated)
        else:
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


def _deadline(reservation: Reservation, policy: SweepPolicy) -> datetime:
    starts_at = reservation.starts_at if isinstance(reservation, SeatedReservation) else None
    return payment_deadline(reservation.created_at, policy.payment_deadline, starts_at)


def _apply_outcome(reservation: Reservation, event: Event, deps: SweepDeps) -> None:
    if isinstance(reservation, SeatedReservation):
        apply_seated_payment_outcome(event, deps.seated)
    else:
        apply_payment_outcome(event, deps.reservations)


def _drive_moved_on(
    reservation: Reservation, deps: SweepDeps, now: datetime, report: SweepReport
) -> bool:
    """Is the saga of a reservation that left Reserved at rest? If not, drive it on."""
    if (
        isinstance(reservation, SeatedReservation)
        and not reservation.holds_seats
        and reservation.allowance_hold is not None
        and give_allowance_back(
            reservation.performance_id,
            reservation.customer_id,
            reservation.allowance_hold,
            reservation.seats,
            deps.store,
        )
    ):  # its seats came back, but a crash kept them counted against the cap
        _repaired(report, reservation, Repair.ALLOWANCE_NOT_RETURNED)
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
    stored = _read(store, *_home(reservation), event_id(reservation.id, event_type))
    if stored is not None:
        return Event.model_validate(stored)
    return reservation_event(event_type, reservation, reservation.updated_at)


def _home(reservation: Reservation) -> tuple[str, str]:
    """The container and partition of a reservation and its events."""
    if isinstance(reservation, SeatedReservation):
        return PERFORMANCES.name, section_partition(
            reservation.performance_id, reservation.section_id
        )
    return MUSICALS.name, reservation.musical_id


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
    for document in _all(store, _Partition(MUSICALS.name, CatalogEntry.PARTITION), where):
        yield document["id"]


def _reservations(
    store: DocumentStore, partition: _Partition, where: Sequence[Condition]
) -> Iterator[Reservation]:
    seated = partition.container == PERFORMANCES.name
    for document in _all(store, partition, where):
        yield (SeatedReservation if seated else Reservation).from_document(document)


def _all(
    store: DocumentStore, partition: _Partition, where: Sequence[Condition]
) -> Iterator[Document]:
    """Every item of a partition that matches, page by page. (The callers read them all before
    acting on any: a repair may move an item out of the query's pages.)"""
    continuation: str | None = None
    while True:
        page = store.query(
            partition.container, partition.key, where, limit=_PAGE, continuation=continuation
        )
        yield from page.items
        if page.continuation is None:
            return
        continuation = page.continuation


# ------------------------------------------------------------------ seated allowances


def _check_allowances(
    performance_id: str, deps: SweepDeps, now: datetime, report: SweepReport
) -> None:
    """The performance's allowances taken from since the sweeper's cursor and at least
    `repair_after` ago (`updatedAt`, set by every take): each hold of theirs that the sweeper
    has not seen placed is looked for; found holding seats, the hold is marked placed (its
    give-back comes with its seats, or by `_drive_moved_on`); found without seats, or never
    placed (a crash between the allowance and the hold), it is given back. Each allowance is
    read once after it quiets, as the reservations are: not every customer's on every sweep."""
    quiet_since = now - deps.policy.repair_after
    cursor_id = f"sweeper.allowances.{performance_id}"
    since = _cursor(deps.store, cursor_id)
    where = [
        Condition("type", "=", SeatAllowance.DOC_TYPE),
        Condition("updatedAt", "<", format_timestamp(quiet_since)),
    ]
    if since is not None:
        where.append(Condition("updatedAt", ">=", since))
    partition = _Partition(PERFORMANCES.name, performance_id)
    allowances = [SeatAllowance.from_document(d) for d in _all(deps.store, partition, where)]
    for allowance in allowances:
        for key, hold in allowance.holds.items():
            if not hold.placed and hold.at < quiet_since:
                _check_hold(allowance, key, hold, deps, report)
    if allowances:
        deps.store.upsert(CONTROL.name, {"id": cursor_id, "since": format_timestamp(quiet_since)})


def _check_hold(
    allowance: SeatAllowance, key: str, hold: AllowanceHold, deps: SweepDeps, report: SweepReport
) -> None:
    found = _placed_under(allowance.performance_id, hold, deps.store)
    if found is not None and found.holds_seats and found.allowance_hold == key:
        with _gone():  # given back meanwhile: nothing to mark
            deps.store.patch(
                PERFORMANCES.name,
                allowance.performance_id,
                allowance.id,
                [Set(f"holds.{key}.placed", True)],
                [Condition(f"holds.{key}.seats", "=", hold.seats)],
            )
        return
    if give_allowance_back(
        allowance.performance_id, allowance.customer_id, key, hold.seats, deps.store
    ):
        report.repairs[Repair.ALLOWANCE_NOT_RETURNED] += 1
        log.warning(
            "seat allowance of %s in performance %s given back: %s",
            allowance.customer_id,
            allowance.performance_id,
            "its reservation was never placed" if found is None else "its seats came back",
            extra={
                "performanceId": allowance.performance_id,
                "repair": Repair.ALLOWANCE_NOT_RETURNED.value,
            },
        )


def _placed_under(
    performance_id: str, hold: AllowanceHold, store: DocumentStore
) -> SeatedReservation | None:
    """The reservation a hold's placement made, if any: a point read per section it may lie in
    (its id is the section and the hold's suffix) until found."""
    for section_id in hold.sections:
        found = find_seated(seated_reservation_id(performance_id, section_id, hold.suffix), store)
        if found is not None:
            return found
    return None


def _gone() -> contextlib.AbstractContextManager[None]:
    return contextlib.suppress(PreconditionFailed, NotFound)
