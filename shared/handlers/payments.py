"""The payment side of the saga: charge when a reservation is placed, refund when it is cancelled.

One payment document per reservation (payments container, partition = reservation id) records
what is wanted (`cancel_requested`) and what is known (`status`, `payment_key`,
`confirm_attempts`). `advance` drives it towards what is wanted from whatever state it is in,
so every message — first delivery, redelivery, a scheduled retry, a cancel that overtook the
placement — is handled by the same idempotent loop:

- charge: Pending/Deferred → record the attempt → confirm at the gateway → Approved | Declined;
  a failing gateway (or an open breaker) → Deferred, retried by a scheduled message. A new
  payment is created with its first attempt recorded.
- cancel: never attempted → Cancelled at once (never charged); possibly charged → ask the
  gateway (confirm is idempotent per order, so it returns the existing charge), refund it, then
  Cancelled. A cancel that lands while another instance is confirming makes that instance's
  write fail its ETag check; it re-reads, sees the cancel, and refunds.

Each state change and its outbox event are one transactional batch guarded by the ETag read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.domain.events import (
    Event,
    EventType,
    ReservationFacts,
    payment_event,
)
from shared.domain.models import Payment, PaymentStatus
from shared.ports import (
    BatchFailed,
    Clock,
    Conflict,
    Create,
    DocumentStore,
    GatewayNotReached,
    GatewayUnavailable,
    MessagePublisher,
    NotFound,
    OutboundMessage,
    PaymentDeclined,
    PaymentGateway,
    PreconditionFailed,
    Replace,
)
from shared.topology import PAYMENTS, TOPIC_RESERVATION

log = logging.getLogger("outerpark.payments")

RETRY_SUBJECT = "PaymentRetry"
CANCEL_REASON = "Reservation cancelled by the customer"
_MAX_ROUNDS = 20
# Instances' clocks differ a little: a retry this close to its time counts as due.
RETRY_TOLERANCE = timedelta(milliseconds=100)


@dataclass(frozen=True)
class PaymentDeps:
    store: DocumentStore
    gateway: PaymentGateway
    bus: MessagePublisher
    clock: Clock
    retry_delay: Callable[[int], float]
    """Seconds to wait before retrying, given how many times the payment was deferred."""


def on_reservation_placed(event: Event, deps: PaymentDeps) -> Payment:
    facts = event.reservation()
    created = _load_or_create(facts, event.correlation_id, cancelled=False, deps=deps)
    if created is not None:  # first sight: created with its first attempt recorded
        try:
            return _confirm(created, deps)
        except _Stale:
            pass  # it changed meanwhile (a cancel landed): decide again from what is stored
    return advance(facts.reservation_id, deps)


def on_reservation_cancelled(event: Event, deps: PaymentDeps) -> Payment:
    facts = event.reservation()
    _load_or_create(facts, event.correlation_id, cancelled=True, deps=deps)
    for _ in range(_MAX_ROUNDS):
        payment = _read(facts.reservation_id, deps.store)
        if payment.cancel_requested:
            break
        wanted = {"cancel_requested": True, **_seated_refund(facts)}
        try:
            _write(payment, payment.model_copy(update=wanted), None, deps)
        except _Stale:
            continue
    return advance(facts.reservation_id, deps)


def _seated_refund(facts: ReservationFacts) -> dict[str, int]:
    """SEATED (CONTRACT §6), to reconcile with the payment rewrite: the fee a seated cancel
    keeps and the refund it asks the gateway for, carried by the cancel event's facts."""
    if facts.refund_amount is None:
        return {}
    return {"cancellation_fee": facts.cancellation_fee or 0, "refund_amount": facts.refund_amount}


def on_retry(reservation_id: str, deferral: int, deps: PaymentDeps) -> Payment:
    """The scheduled retry of the payment's `deferral`-th deferral has arrived."""
    return advance(reservation_id, deps, due_retry=deferral)


def advance(reservation_id: str, deps: PaymentDeps, due_retry: int | None = None) -> Payment:
    """Move the payment towards what is wanted until it is settled or has to wait.

    `due_retry` names the deferral whose scheduled retry is being handled: that one goes ahead
    even if this instance's clock says it came a little early (the bus's clock decided it was
    due; rescheduling it under the same message id would be dropped as a duplicate).
    """
    for _ in range(_MAX_ROUNDS):
        payment = _read(reservation_id, deps.store)
        if payment.is_settled:
            return payment
        if due_retry != payment.deferrals and _retry_pending(payment, deps.clock.now()):
            # A duplicate or early delivery: the scheduled retry will do the work. Scheduling
            # it again is harmless (same message id) and repairs a retry whose send failed.
            _schedule_retry(payment, payment.next_attempt_at, deps.bus)
            return payment
        try:
            if payment.cancel_requested:
                return _cancel(payment, deps)
            return _charge(payment, deps)
        except _Stale:
            continue
    raise RuntimeError(f"payment {reservation_id} kept changing; will be redelivered")


def _charge(payment: Payment, deps: PaymentDeps) -> Payment:
    attempt = _write(
        payment,
        payment.model_copy(update={"confirm_attempts": payment.confirm_attempts + 1}),
        None,
        deps,
    )
    return _confirm(attempt, deps)


def _confirm(attempt: Payment, deps: PaymentDeps) -> Payment:
    """Ask the gateway to charge; `attempt` is the stored payment with this attempt counted."""
    try:
        approval = deps.gateway.confirm(attempt.reservation_id, attempt.amount, attempt.order_name)
    except PaymentDeclined as declined:
        done = attempt.model_copy(
            update={"status": PaymentStatus.DECLINED, "decline_code": declined.code}
        )
        return _write(attempt, done, EventType.PAYMENT_DECLINED, deps, reason=declined.message)
    except GatewayUnavailable as unavailable:
        return _defer(attempt, deps, uncount_attempt=isinstance(unavailable, GatewayNotReached))
    approved = attempt.model_copy(
        update={"status": PaymentStatus.APPROVED, "payment_key": approval.payment_key}
    )
    return _write(attempt, approved, EventType.PAYMENT_APPROVED, deps)


def _cancel(payment: Payment, deps: PaymentDeps) -> Payment:
    if not payment.may_be_charged:
        cancelled = payment.model_copy(update={"status": PaymentStatus.CANCELLED})
        return _write(payment, cancelled, EventType.PAYMENT_CANCELLED, deps, reason=CANCEL_REASON)
    try:
        payment_key = payment.payment_key or _charge_on_record(payment, deps)
        if payment_key is not None and payment.refund_amount != 0:
            deps.gateway.cancel(
                payment_key,
                CANCEL_REASON,
                idempotency_key=f"{payment.id}.cancel",
                cancel_amount=payment.refund_amount,  # SEATED: None = the whole balance
            )
    except GatewayUnavailable:
        return _defer(payment, deps)
    refunded = payment.model_copy(
        update={
            "status": PaymentStatus.CANCELLED,
            "payment_key": payment_key,
            "refunded": True,
        }
    )
    return _write(payment, refunded, EventType.PAYMENT_CANCELLED, deps, reason=CANCEL_REASON)


def _charge_on_record(payment: Payment, deps: PaymentDeps) -> str | None:
    """The key of the charge the gateway holds for this order, or None if it declines it.

    Confirm is idempotent per order id, so asking again returns the existing charge. If the
    earlier attempt never reached the gateway, this charges now — and the caller refunds at
    once: the customer is never left charged.
    """
    try:
        return deps.gateway.confirm(
            payment.reservation_id, payment.amount, payment.order_name
        ).payment_key
    except PaymentDeclined:
        return None


def _defer(payment: Payment, deps: PaymentDeps, *, uncount_attempt: bool = False) -> Payment:
    """Pay later: Deferred (with its event the first time) and a retry scheduled with backoff.

    A confirm that never reached the gateway (refused connection, open breaker:
    `uncount_attempt`) does not count as an attempt that may have charged the customer.
    """
    attempts = payment.confirm_attempts - 1 if uncount_attempt else payment.confirm_attempts
    deferrals = payment.deferrals + 1
    retry_at = deps.clock.now() + timedelta(seconds=deps.retry_delay(deferrals))
    deferred = payment.model_copy(
        update={
            "status": PaymentStatus.DEFERRED
            if payment.status is PaymentStatus.PENDING
            else payment.status,
            "confirm_attempts": attempts,
            "deferrals": deferrals,
            "next_attempt_at": retry_at,
        }
    )
    first_deferral = payment.status is PaymentStatus.PENDING
    stored = _write(
        payment,
        deferred,
        EventType.PAYMENT_DEFERRED if first_deferral else None,
        deps,
        reason="payment gateway unavailable; retrying later",
    )
    _schedule_retry(stored, retry_at, deps.bus)
    log.info(
        "payment deferred",
        extra={
            "reservationId": stored.reservation_id,
            "retryAt": retry_at.isoformat(),
            "deferrals": deferrals,
        },
    )
    return stored


def _schedule_retry(payment: Payment, at: datetime, bus: MessagePublisher) -> None:
    bus.publish(
        TOPIC_RESERVATION,
        [
            OutboundMessage(
                body=json.dumps(
                    {"reservationId": payment.reservation_id, "deferral": payment.deferrals}
                ).encode(),
                message_id=f"{payment.reservation_id}.retry.{payment.deferrals}",
                subject=RETRY_SUBJECT,
                correlation_id=payment.correlation_id,
                application_properties={"reservationId": payment.reservation_id},
                scheduled_enqueue_time=at,
            )
        ],
    )


def _retry_pending(payment: Payment, now: datetime) -> bool:
    """A retry is scheduled for later, and the next step needs the gateway."""
    if payment.next_attempt_at is None or payment.next_attempt_at - RETRY_TOLERANCE <= now:
        return False
    return payment.may_be_charged or not payment.cancel_requested


class _Stale(Exception):
    """The payment changed since we read it: read again and decide again."""


def _write(
    current: Payment,
    updated: Payment,
    event_type: EventType | None,
    deps: PaymentDeps,
    reason: str | None = None,
) -> Payment:
    now = deps.clock.now()
    updated = updated.model_copy(update={"updated_at": now})
    operations: list = [Replace(updated.to_document(), if_match=current.etag)]
    if event_type is not None:
        event = payment_event(event_type, updated, now, reason)
        operations.append(Create(event.to_document("reservationId", updated.reservation_id)))
    try:
        stored = deps.store.batch(PAYMENTS.name, updated.reservation_id, operations)
    except BatchFailed as failure:
        if isinstance(failure.cause, PreconditionFailed):
            raise _Stale from None
        if isinstance(failure.cause, Conflict) and event_type is not None:
            # The event exists already (raised by an earlier transition): keep that one.
            return _write(current, updated, None, deps)
        raise
    return Payment.from_document(stored[0])


def _load_or_create(
    facts: ReservationFacts, correlation_id: str, *, cancelled: bool, deps: PaymentDeps
) -> Payment | None:
    """Create the payment on first sight, or return None when it exists already.

    A cancel that arrives first creates it cancelled. A placement creates it with its first
    confirm attempt already counted: the next step is always that attempt, and counting it in
    the same write saves one write per payment on the saga's busiest stage."""
    now = deps.clock.now()
    payment = Payment(
        id=facts.reservation_id,
        reservation_id=facts.reservation_id,
        musical_id=facts.musical_id,
        customer_id=facts.customer_id,
        amount=facts.amount,
        order_name=f"{facts.musical_title} x{facts.seats}",
        status=PaymentStatus.CANCELLED if cancelled else PaymentStatus.PENDING,
        cancel_requested=cancelled,
        confirm_attempts=0 if cancelled else 1,
        correlation_id=correlation_id,
        created_at=now,
        updated_at=now,
        **(_seated_refund(facts) if cancelled else {}),
    )
    operations: list = [Create(payment.to_document())]
    if cancelled:
        event = payment_event(EventType.PAYMENT_CANCELLED, payment, now, CANCEL_REASON)
        operations.append(Create(event.to_document("reservationId", payment.reservation_id)))
    try:
        stored = deps.store.batch(PAYMENTS.name, payment.reservation_id, operations)
    except BatchFailed as failure:
        if not isinstance(failure.cause, Conflict):
            raise
        return None
    return Payment.from_document(stored[0])


def _read(reservation_id: str, store: DocumentStore) -> Payment:
    try:
        return Payment.from_document(store.read(PAYMENTS.name, reservation_id, reservation_id))
    except NotFound:
        raise LookupError(f"no payment for reservation {reservation_id}") from None
