"""The payment side of the saga: charge when a reservation is placed, refund when it is cancelled.

One payment document per reservation (payments container, partition = reservation id) records
what is wanted (`cancel_requested`, `refund_amount`) and what is known (`status`,
`payment_key`, `confirm_attempts`, `last_attempt_at`). `advance` drives it towards what is
wanted from whatever state it is in, so every message — first delivery, redelivery, a scheduled
retry, a cancel that overtook the placement, a reconciler's nudge — is handled by the same
idempotent loop. The gateway's answers are read as docs/payment-gateway.md says (`shared.ports`):

- charge: Pending/Deferred → ask the breaker → record the attempt → confirm → Approved |
  Declined. "Already processed" → look the order up and adopt its charge. Any other unknown
  outcome (409 in progress, 401/403, odd 4xx, 5xx, timeout) or an open breaker → Deferred,
  retried by a scheduled message with backoff. The breaker is asked before an attempt is
  counted, so a refused retry costs one write (its rescheduling) and one send.
- cancel: never attempted → Cancelled at once (never charged). Possibly charged → look the
  order up (never confirm: that could charge) → cancel what the gateway holds (`cancelAmount` =
  `refund_amount`) → Cancelled, refunded. Not found → not charged so far, but a confirm sent
  less than `confirm_window` ago may still charge: look again once that has passed, then
  Cancelled, not charged. A refund that cannot complete now leaves the payment `Refunding`
  and is retried, with the same Idempotency-Key, until it succeeds.
- An approval that comes back after a cancel was recorded (another instance cancelled while
  this one confirmed) is kept on the payment and refunded: a charge is never dropped.

Each state change and its outbox event are one transactional batch guarded by the ETag read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.domain.events import (
    Event,
    EventType,
    ReservationFacts,
    payment_event,
)
from shared.domain.models import Payment, PaymentStatus
from shared.domain.performances import payment_deadline
from shared.optimistic import LostRace, retry_on_race
from shared.ports import (
    AlreadyProcessed,
    BatchFailed,
    BatchOperation,
    Clock,
    Conflict,
    Create,
    DocumentStore,
    GatewayNotReached,
    GatewayPayment,
    MessagePublisher,
    NotFound,
    OutboundMessage,
    OutcomeUnknown,
    PaymentDeclined,
    PaymentGateway,
    PreconditionFailed,
    Replace,
    written,
)
from shared.topology import PAYMENTS, TOPIC_RESERVATION

log = logging.getLogger("outerpark.payments")

RETRY_SUBJECT = "PaymentRetry"
CANCEL_REASON = "Reservation cancelled by the customer"
DEFERRED_REASON = "payment gateway unavailable; retrying later"
# Instances' clocks differ a little: a retry this close to its time counts as due.
RETRY_TOLERANCE = timedelta(milliseconds=100)
DEFAULT_CONFIRM_WINDOW = timedelta(seconds=12)
_FINAL = frozenset({PaymentStatus.DECLINED, PaymentStatus.CANCELLED})


@dataclass(frozen=True)
class PaymentDeps:
    store: DocumentStore
    gateway: PaymentGateway
    bus: MessagePublisher
    clock: Clock
    retry_delay: Callable[[int], float]
    """Seconds to wait before retrying, given how many times the payment was deferred."""
    confirm_window: timedelta = DEFAULT_CONFIRM_WINDOW
    """How long after a confirm was sent the gateway may still charge it (the function app
    uses 4 gateway timeouts, as the breaker's probe lease): a lookup that finds no charge
    settles a cancel only once the last attempt is older than this."""
    payment_deadline: timedelta | None = None
    """How long a reservation waits for its payment (the sweeper expires it then): a deferred
    charge is not begun after it. None: no deadline."""


def on_reservation_placed(event: Event, deps: PaymentDeps) -> Payment:
    facts = event.reservation()
    created = _load_or_create(facts, event.correlation_id, cancelled=False, deps=deps)
    if created is not None and created.status is PaymentStatus.DEFERRED:
        return created  # first sight, the breaker open: created with its retry scheduled
    if created is not None and created.confirm_attempts > 0:
        try:  # first sight: created with its first attempt recorded
            return _confirm(created, deps)
        except LostRace:
            pass  # it changed meanwhile (a cancel landed): decide again from what is stored
    return advance(facts.reservation_id, deps)


def on_reservation_cancelled(event: Event, deps: PaymentDeps) -> Payment:
    """Refund (or never charge) the reservation's payment. An event whose payload carries
    `refundAmount` (a cancel that keeps a fee) refunds only that much; otherwise everything."""
    facts = event.reservation()
    refund_amount = _refund_amount(event.payload)
    _load_or_create(
        facts, event.correlation_id, cancelled=True, deps=deps, refund_amount=refund_amount
    )

    def request_cancel() -> None:
        payment = _read(facts.reservation_id, deps.store)
        if payment.cancel_requested:
            return
        refunding = payment.may_be_charged and payment.status not in _FINAL
        wanted = payment.model_copy(
            update={
                "cancel_requested": True,
                "refund_amount": refund_amount,
                "status": PaymentStatus.REFUNDING if refunding else payment.status,
            }
        )
        _write(payment, wanted, None, deps)

    retry_on_race(request_cancel, f"payment {facts.reservation_id}")
    return advance(facts.reservation_id, deps)


def on_retry(reservation_id: str, deferral: int, deps: PaymentDeps) -> Payment:
    """The scheduled retry of the payment's `deferral`-th deferral has arrived."""
    return advance(reservation_id, deps, due_retry=deferral)


def advance(reservation_id: str, deps: PaymentDeps, due_retry: int | None = None) -> Payment:
    """Move the payment towards what is wanted until it is settled or has to wait.

    Safe and sufficient to re-drive any payment from any state, any number of times, from
    anywhere (a scheduled retry, a redelivery, a reconciler on a timer): it reads what is
    stored and does the next step only; a settled payment is returned unchanged; a payment
    waiting for a retry that is not yet due only has that retry scheduled again (same message
    id: a duplicate the bus drops, or the repair of a retry whose message was lost or
    dead-lettered); an overdue one is driven on at once. Raises LookupError when the
    reservation has no payment yet: `on_reservation_placed` (or `on_reservation_cancelled`)
    with the reservation's event creates it.

    `due_retry` names the deferral whose scheduled retry is being handled: that one goes ahead
    even if this instance's clock says it came a little early (the bus's clock decided it was
    due; rescheduling it under the same message id would be dropped as a duplicate).
    """

    def step() -> Payment:
        payment = _read(reservation_id, deps.store)
        if payment.is_settled:
            return payment
        pending = _pending_retry(payment, deps.clock.now())
        if pending is not None and due_retry != payment.deferrals:
            _schedule_retry(payment, pending, deps.bus)
            return payment
        if payment.cancel_requested:
            return _cancel(payment, deps)
        return _charge(payment, deps)

    return retry_on_race(step, f"payment {reservation_id}")


# ------------------------------------------------------------------------------------ charge


def _charge(payment: Payment, deps: PaymentDeps) -> Payment:
    if payment.charge_by is not None and deps.clock.now() >= payment.charge_by:
        # The reservation expires unpaid (the sweeper), and its cancel settles this payment.
        log.info(
            "payment %s not charged: its deadline passed",
            payment.reservation_id,
            extra={"correlation_id": payment.correlation_id},
        )
        return payment
    if payment.amount == 0:
        free = payment.model_copy(update={"status": PaymentStatus.APPROVED})
        return _write(payment, free, EventType.PAYMENT_APPROVED, deps)
    if not deps.gateway.admits():
        return _defer(payment, deps)  # the breaker would refuse: no attempt to count
    now = deps.clock.now()
    attempt = _write(
        payment,
        payment.model_copy(
            update={"confirm_attempts": payment.confirm_attempts + 1, "last_attempt_at": now}
        ),
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
    except AlreadyProcessed:
        return _adopt_charge(attempt, deps)
    except GatewayNotReached:
        return _defer(attempt, deps, uncount_attempt=True)
    except OutcomeUnknown:
        return _defer(attempt, deps)
    return _approved(attempt, approval.payment_key, deps)


def _adopt_charge(attempt: Payment, deps: PaymentDeps) -> Payment:
    """The gateway says the order was charged before (an answer was lost): find that charge."""
    try:
        found = deps.gateway.lookup(attempt.reservation_id)
    except OutcomeUnknown:
        return _defer(attempt, deps)
    if found is None:
        return _defer(attempt, deps)  # processed but not found yet: ask again later
    if found.status != "DONE":
        # Cancelled at the gateway by someone else (its console): nothing to confirm with.
        log.error(
            "order %s is %s at the payment gateway though it was never cancelled here",
            attempt.reservation_id,
            found.status,
        )
        code = f"{found.status}_AT_GATEWAY"
        declined = attempt.model_copy(
            update={"status": PaymentStatus.DECLINED, "decline_code": code}
        )
        return _write(attempt, declined, EventType.PAYMENT_DECLINED, deps, reason=code)
    return _approved(attempt, found.payment_key, deps)


def _approved(attempt: Payment, payment_key: str, deps: PaymentDeps) -> Payment:
    """Record the charge `payment_key` as this payment's approval; should the payment have
    changed meanwhile (a cancel landed), `_keep_charge` records the charge all the same."""
    approved = attempt.model_copy(
        update={"status": PaymentStatus.APPROVED, "payment_key": payment_key}
    )
    try:
        return _write(attempt, approved, EventType.PAYMENT_APPROVED, deps)
    except LostRace:
        return _keep_charge(attempt.reservation_id, payment_key, deps)


def _keep_charge(reservation_id: str, payment_key: str, deps: PaymentDeps) -> Payment:
    """Record a charge this instance learnt of while the payment changed under it (a cancel
    landed): it is approved, or, cancelled meanwhile, refunded; never forgotten."""

    def record() -> Payment:
        payment = _read(reservation_id, deps.store)
        if payment.payment_key == payment_key:
            return advance(reservation_id, deps)
        if payment.cancel_requested:
            charged = payment.model_copy(
                update={
                    "payment_key": payment_key,
                    "status": PaymentStatus.REFUNDING,
                    "refunded": False,
                }
            )
            stored = _write(payment, charged, None, deps)
            # Refund now, not when the retry the cancel scheduled comes due.
            return advance(reservation_id, deps, due_retry=stored.deferrals)
        approved = payment.model_copy(
            update={"status": PaymentStatus.APPROVED, "payment_key": payment_key}
        )
        return _write(payment, approved, EventType.PAYMENT_APPROVED, deps)

    return retry_on_race(record, f"payment {reservation_id}")


# ------------------------------------------------------------------------------------ cancel


def _cancel(payment: Payment, deps: PaymentDeps) -> Payment:
    if not payment.may_be_charged:
        cancelled = payment.model_copy(update={"status": PaymentStatus.CANCELLED})
        return _write(payment, cancelled, EventType.PAYMENT_CANCELLED, deps, reason=CANCEL_REASON)
    if not deps.gateway.admits():
        return _defer(payment, deps)
    payment_key = payment.payment_key
    if payment_key is None:
        try:
            found = deps.gateway.lookup(payment.reservation_id)
        except OutcomeUnknown:
            return _defer(payment, deps)
        if found is None:
            return _not_charged(payment, deps)
        if found.balance_amount <= _balance_to_keep(payment, found):
            return _refunded(payment, found.payment_key, deps)
        payment_key = found.payment_key
    if _refund_of(payment) > 0:
        try:
            deps.gateway.cancel(
                payment_key,
                CANCEL_REASON,
                idempotency_key=f"{payment.id}.cancel",
                cancel_amount=payment.refund_amount,
            )
        except OutcomeUnknown:
            return _defer(payment.model_copy(update={"payment_key": payment_key}), deps)
    return _refunded(payment, payment_key, deps)


def _not_charged(payment: Payment, deps: PaymentDeps) -> Payment:
    """The gateway has no charge for the order. Settle, unless a confirm sent recently may
    still land: then look again once it cannot any more."""
    last = payment.last_attempt_at
    settles_at = last + deps.confirm_window if last is not None else None
    if settles_at is not None and settles_at > deps.clock.now():
        return _defer(payment, deps, retry_at=settles_at)
    cancelled = payment.model_copy(
        update={"status": PaymentStatus.CANCELLED, "confirm_attempts": 0}
    )
    return _write(payment, cancelled, EventType.PAYMENT_CANCELLED, deps, reason=CANCEL_REASON)


def _refunded(payment: Payment, payment_key: str, deps: PaymentDeps) -> Payment:
    refunded = payment.model_copy(
        update={
            "status": PaymentStatus.CANCELLED,
            "payment_key": payment_key,
            "refunded": True,
            "refunded_amount": _refund_of(payment),
        }
    )
    return _write(payment, refunded, EventType.PAYMENT_CANCELLED, deps, reason=CANCEL_REASON)


def _refund_of(payment: Payment) -> int:
    return payment.amount if payment.refund_amount is None else payment.refund_amount


def _balance_to_keep(payment: Payment, found: GatewayPayment) -> int:
    """What the charge's balance is once this cancel is done (0 for a full refund)."""
    if payment.refund_amount is None:
        return 0
    return max(0, found.total_amount - payment.refund_amount)


def _refund_amount(payload: dict[str, Any]) -> int | None:
    amount = payload.get("refundAmount")
    return amount if type(amount) is int and amount >= 0 else None


# ------------------------------------------------------------------------------------ waiting


def _defer(
    payment: Payment,
    deps: PaymentDeps,
    *,
    uncount_attempt: bool = False,
    retry_at: datetime | None = None,
) -> Payment:
    """Try later: a retry scheduled with backoff (or at `retry_at`), in one write and one send.

    A payment still to be charged becomes Deferred (with its event the first time); one whose
    cancel waits on the gateway becomes Refunding. A confirm that never reached the gateway
    (refused connection, open breaker: `uncount_attempt`) does not count as an attempt that
    may have charged the customer.
    """
    attempts = payment.confirm_attempts - 1 if uncount_attempt else payment.confirm_attempts
    deferrals = payment.deferrals + 1
    if retry_at is None:
        retry_at = deps.clock.now() + timedelta(seconds=deps.retry_delay(deferrals))
    deferred = payment.model_copy(
        update={"confirm_attempts": attempts, "deferrals": deferrals, "next_attempt_at": retry_at}
    )
    first_deferral = payment.status is PaymentStatus.PENDING and not payment.cancel_requested
    if payment.cancel_requested and deferred.may_be_charged:
        status = PaymentStatus.REFUNDING
    elif payment.status is PaymentStatus.PENDING:
        status = PaymentStatus.DEFERRED
    else:
        status = payment.status
    stored = _write(
        payment,
        deferred.model_copy(update={"status": status}),
        EventType.PAYMENT_DEFERRED if first_deferral else None,
        deps,
        reason=DEFERRED_REASON,
    )
    _schedule_retry(stored, retry_at, deps.bus)
    log.info(
        "payment %s",
        "refund deferred" if stored.status is PaymentStatus.REFUNDING else "deferred",
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


def _pending_retry(payment: Payment, now: datetime) -> datetime | None:
    """When the retry scheduled for later is due, if there is one and the next step needs the
    gateway; None when the payment can be driven on now."""
    at = payment.next_attempt_at
    if at is None or at - RETRY_TOLERANCE <= now:
        return None
    return at if payment.may_be_charged or not payment.cancel_requested else None


# ------------------------------------------------------------------------------------ storage


def _write(
    current: Payment,
    updated: Payment,
    event_type: EventType | None,
    deps: PaymentDeps,
    reason: str | None = None,
) -> Payment:
    now = deps.clock.now()
    updated = updated.model_copy(update={"updated_at": now})
    operations: list[BatchOperation] = [Replace(updated.to_document(), if_match=current.etag)]
    if event_type is not None:
        event = payment_event(event_type, updated, now, reason)
        operations.append(Create(event.to_document("reservationId", updated.reservation_id)))
    try:
        stored = deps.store.batch(PAYMENTS.name, updated.reservation_id, operations)
    except BatchFailed as failure:
        if isinstance(failure.cause, PreconditionFailed):
            raise LostRace from None
        if isinstance(failure.cause, Conflict) and event_type is not None:
            # The event exists already (raised by an earlier transition): keep that one.
            return _write(current, updated, None, deps)
        raise
    return Payment.from_document(written(stored, 0))


def _load_or_create(
    facts: ReservationFacts,
    correlation_id: str,
    *,
    cancelled: bool,
    deps: PaymentDeps,
    refund_amount: int | None = None,
) -> Payment | None:
    """Create the payment on first sight, or return None when it exists already.

    A cancel that arrives first creates it cancelled. A placement creates it with its first
    confirm attempt already counted: the next step is always that attempt, and counting it in
    the same write saves one write per payment on the saga's busiest stage. When the breaker
    would refuse that attempt, it is created Deferred instead, its retry scheduled: one write
    and one send, as for any refused retry."""
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
        refund_amount=refund_amount,
        correlation_id=correlation_id,
        charge_by=(
            None
            if deps.payment_deadline is None
            else payment_deadline(facts.created_at, deps.payment_deadline, facts.starts_at)
        ),
        created_at=now,
        updated_at=now,
    )
    event_type: EventType | None = None
    if cancelled:
        event_type = EventType.PAYMENT_CANCELLED
    elif facts.amount > 0 and not deps.gateway.admits():
        retry_at = now + timedelta(seconds=deps.retry_delay(1))
        payment = payment.model_copy(
            update={"status": PaymentStatus.DEFERRED, "deferrals": 1, "next_attempt_at": retry_at}
        )
        event_type = EventType.PAYMENT_DEFERRED
    elif facts.amount > 0:
        payment = payment.model_copy(update={"confirm_attempts": 1, "last_attempt_at": now})
    operations: list[BatchOperation] = [Create(payment.to_document())]
    if event_type is not None:
        reason = CANCEL_REASON if cancelled else DEFERRED_REASON
        event = payment_event(event_type, payment, now, reason)
        operations.append(Create(event.to_document("reservationId", payment.reservation_id)))
    try:
        stored = deps.store.batch(PAYMENTS.name, payment.reservation_id, operations)
    except BatchFailed as failure:
        if not isinstance(failure.cause, Conflict):
            raise
        return None
    created = Payment.from_document(written(stored, 0))
    if created.status is PaymentStatus.DEFERRED and created.next_attempt_at is not None:
        _schedule_retry(created, created.next_attempt_at, deps.bus)
    return created


def _read(reservation_id: str, store: DocumentStore) -> Payment:
    try:
        return Payment.from_document(store.read(PAYMENTS.name, reservation_id, reservation_id))
    except NotFound:
        raise LookupError(f"no payment for reservation {reservation_id}") from None
