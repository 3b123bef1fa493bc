"""Tell the customer what happened to their payment: one notice per (reservation, kind).

The notice is recorded Pending, claimed for a short lease, sent, then marked Sent. A redelivery
finds it Sent and does nothing; a concurrent delivery of the same message waits for the lease
holder instead of sending too; a crash between sending and marking resends it once the lease
has run out (at least once), with the notice id as the provider's idempotency key so a provider
that honours it delivers it once.

A reservation that expired gets one notice, `reservation-expired`, sent on its PaymentCancelled:
only once the payment is settled can it say whether anything was charged and refunded. The
ReservationExpired event itself sends nothing. Whether a PaymentCancelled is an expiry's is read
from the reservation, which is Expired before its payment is asked to cancel and stays so:
every delivery of that message, in any order, names the same notice. An approval that crossed
the expiry (charged while the reservation expired, then refunded) sends no notice of its own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from shared.domain.events import Event, EventType, PaymentFacts
from shared.domain.models import Notice, NoticeKind, NoticeStatus, ReservationStatus
from shared.ports import (
    Clock,
    Conflict,
    DocumentStore,
    NotFound,
    NoticeSender,
    PreconditionFailed,
)
from shared.topology import MUSICALS, NOTICES, PAYMENTS

# Shorter than a message lock (30 s), so a redelivery after a crash finds the lease expired.
SENDING_LEASE = timedelta(seconds=20)
MAX_RACE_RETRIES = 1000
_WAIT_SECONDS = 0.05

_KIND_OF: dict[EventType, NoticeKind] = {
    EventType.PAYMENT_APPROVED: NoticeKind.PAYMENT_APPROVED,
    EventType.PAYMENT_DECLINED: NoticeKind.PAYMENT_DECLINED,
    EventType.PAYMENT_CANCELLED: NoticeKind.PAYMENT_CANCELLED,
}


def notice_kind_of(event: Event, store: DocumentStore) -> NoticeKind | None:
    """The notice `event` calls for, if any: the cancel of an expired reservation's payment
    tells of the expiry (see the module)."""
    kind = _KIND_OF.get(event.event_type)
    if kind is NoticeKind.PAYMENT_CANCELLED and _expired(event.payment(), store):
        return NoticeKind.RESERVATION_EXPIRED
    return kind


def notice_id_of(event: Event, store: DocumentStore) -> str | None:
    """The id of the notice `event` calls for (in the customer's partition), if any."""
    kind = notice_kind_of(event, store)
    return None if kind is None else Notice.id_for(event.payment().reservation_id, kind)


@dataclass(frozen=True)
class NoticeDeps:
    """What the notice use case needs, built once by shared.bootstrap. `pause` waits while
    another delivery holds a notice's lease."""

    store: DocumentStore
    sender: NoticeSender
    clock: Clock
    pause: Callable[[float], None] = time.sleep


def notify_payment_outcome(event: Event, deps: NoticeDeps) -> Notice | None:
    store, sender, clock, pause = deps.store, deps.sender, deps.clock, deps.pause
    kind = notice_kind_of(event, store)
    if kind is None:
        return None
    facts = event.payment()
    cancelled_since = kind is NoticeKind.PAYMENT_APPROVED and _cancelled_since(facts, store)
    if cancelled_since and _expired(facts, store):
        return None  # an approval that crossed the expiry: the expiry's notice tells of it
    now = clock.now()
    notice = Notice(
        id=Notice.id_for(facts.reservation_id, kind),
        customer_id=facts.customer_id,
        reservation_id=facts.reservation_id,
        musical_id=facts.musical_id,
        kind=kind,
        message=_message(kind, facts, cancelled_since=cancelled_since),
        status=NoticeStatus.PENDING,
        correlation_id=event.correlation_id,
        created_at=now,
    )
    claimed = notice.model_copy(update={"sending_until": now + SENDING_LEASE})
    try:
        created = Notice.from_document(store.create(NOTICES.name, claimed.to_document()))
    except Conflict:
        notice = _read(notice, store)
    else:
        # First sight: created already claimed, so the common path costs two writes.
        return _send(created, sender, store, clock)
    for _ in range(MAX_RACE_RETRIES):
        if notice.status is NoticeStatus.SENT:
            return notice
        if notice.sending_until is not None and notice.sending_until > clock.now():
            # Another delivery is sending it: wait for it to finish, or for its lease to end.
            pause(_WAIT_SECONDS)
            notice = _read(notice, store)
            continue
        lease = notice.model_copy(update={"sending_until": clock.now() + SENDING_LEASE})
        try:
            claimed = Notice.from_document(
                store.replace(NOTICES.name, lease.to_document(), if_match=notice.etag)
            )
        except PreconditionFailed:
            notice = _read(notice, store)
            continue
        return _send(claimed, sender, store, clock)
    raise RuntimeError(f"notice {notice.id} is still being sent elsewhere; will be redelivered")


def _send(claimed: Notice, sender: NoticeSender, store: DocumentStore, clock: Clock) -> Notice:
    """Send the notice this delivery holds the lease of, then mark it Sent."""
    try:
        sender.send(claimed.id, claimed.customer_id, claimed.kind, claimed.message)
    except Exception:
        _release(claimed, store)  # so the redelivery sends at once instead of waiting
        raise
    sent = claimed.model_copy(update={"status": NoticeStatus.SENT, "sent_at": clock.now()})
    return Notice.from_document(
        store.replace(NOTICES.name, sent.to_document(), if_match=claimed.etag)
    )


def _release(notice: Notice, store: DocumentStore) -> None:
    released = notice.model_copy(update={"sending_until": None})
    with contextlib.suppress(PreconditionFailed):
        store.replace(NOTICES.name, released.to_document(), if_match=notice.etag)


def _read(notice: Notice, store: DocumentStore) -> Notice:
    return Notice.from_document(store.read(NOTICES.name, notice.customer_id, notice.id))


# ------------------------------------------------------------------------- what notices say
# Every customer-facing text is here, one case per kind: say what happened, nothing more.


def _message(kind: NoticeKind, facts: PaymentFacts, *, cancelled_since: bool = False) -> str:
    """The notice's text. `cancelled_since`: the reservation was cancelled after its payment
    was approved (the approval's notice must not wish a good show)."""
    order = facts.order_name or f"reservation {facts.reservation_id}"
    match kind:
        case NoticeKind.PAYMENT_APPROVED if cancelled_since:
            return (
                f"Your payment of {facts.amount} for {order} was approved; the reservation"
                " has been cancelled since, so the payment is being refunded."
            )
        case NoticeKind.PAYMENT_APPROVED:
            return f"Your payment of {facts.amount} for {order} was approved. Enjoy the show!"
        case NoticeKind.PAYMENT_DECLINED:
            reason = f" ({facts.reason})" if facts.reason else ""
            return (
                f"Your payment of {facts.amount} for {order} was declined{reason}; "
                "the seats were released."
            )
        case NoticeKind.PAYMENT_CANCELLED if facts.refunded_amount is not None:
            kept = facts.amount - facts.refunded_amount
            fee = f"; a cancellation fee of {kept} was kept" if kept > 0 else ""
            return (
                f"Your reservation {order} was cancelled and {facts.refunded_amount} of your"
                f" payment of {facts.amount} was refunded{fee}."
            )
        case NoticeKind.PAYMENT_CANCELLED:
            return f"Your reservation {order} was cancelled; you were not charged for it."
        case NoticeKind.RESERVATION_EXPIRED if facts.refunded_amount is not None:
            return (
                f"Your reservation {order} expired: its payment was not approved in time, so"
                f" the seats were released and the {facts.refunded_amount} charged for it was"
                " refunded."
            )
        case NoticeKind.RESERVATION_EXPIRED:
            return (
                f"Your reservation {order} expired: its payment was not approved in time, so"
                " the seats were released; you were not charged for it."
            )


def _cancelled_since(facts: PaymentFacts, store: DocumentStore) -> bool:
    """Whether the payment was asked to be cancelled after the approval this notice tells of."""
    try:
        payment = store.read(PAYMENTS.name, facts.reservation_id, facts.reservation_id)
    except NotFound:
        return False
    return bool(payment.get("cancelRequested"))


def _expired(facts: PaymentFacts, store: DocumentStore) -> bool:
    try:
        reservation = store.read(MUSICALS.name, facts.musical_id, facts.reservation_id)
    except NotFound:
        return False
    return reservation.get("status") == ReservationStatus.EXPIRED
