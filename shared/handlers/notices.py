"""Tell the customer what happened to their payment: one notice per (reservation, kind).

The notice is recorded Pending, then sent, then marked Sent. A redelivery finds it Sent and does
nothing; a crash between sending and marking resends it (at least once), with the notice id as
the provider's idempotency key so a provider that honours it delivers it once.
"""

from __future__ import annotations

from shared.domain.events import Event, EventType, PaymentFacts
from shared.domain.models import Notice, NoticeKind, NoticeStatus
from shared.ports import Clock, Conflict, DocumentStore, NoticeSender, PreconditionFailed
from shared.topology import NOTICES

_KIND_OF: dict[EventType, NoticeKind] = {
    EventType.PAYMENT_APPROVED: NoticeKind.PAYMENT_APPROVED,
    EventType.PAYMENT_DECLINED: NoticeKind.PAYMENT_DECLINED,
    EventType.PAYMENT_CANCELLED: NoticeKind.PAYMENT_CANCELLED,
}


def notify_payment_outcome(
    event: Event, store: DocumentStore, sender: NoticeSender, clock: Clock
) -> Notice | None:
    kind = _KIND_OF.get(event.event_type)
    if kind is None:
        return None
    facts = event.payment()
    now = clock.now()
    notice = Notice(
        id=Notice.id_for(facts.reservation_id, kind),
        customer_id=facts.customer_id,
        reservation_id=facts.reservation_id,
        musical_id=facts.musical_id,
        kind=kind,
        message=_message(kind, facts),
        status=NoticeStatus.PENDING,
        correlation_id=event.correlation_id,
        created_at=now,
    )
    try:
        notice = Notice.from_document(store.create(NOTICES.name, notice.to_document()))
    except Conflict:
        notice = Notice.from_document(store.read(NOTICES.name, facts.customer_id, notice.id))
        if notice.status is NoticeStatus.SENT:
            return notice
    sender.send(notice.id, notice.customer_id, notice.kind, notice.message)
    sent = notice.model_copy(update={"status": NoticeStatus.SENT, "sent_at": clock.now()})
    try:
        return Notice.from_document(store.replace(NOTICES.name, sent.to_document(), notice.etag))
    except PreconditionFailed:
        # A concurrent delivery of the same message marked it first.
        return Notice.from_document(store.read(NOTICES.name, facts.customer_id, notice.id))


def _message(kind: NoticeKind, facts: PaymentFacts) -> str:
    order = facts.order_name or f"reservation {facts.reservation_id}"
    match kind:
        case NoticeKind.PAYMENT_APPROVED:
            return f"Your payment of {facts.amount} for {order} was approved. Enjoy the show!"
        case NoticeKind.PAYMENT_DECLINED:
            reason = f" ({facts.reason})" if facts.reason else ""
            return (
                f"Your payment of {facts.amount} for {order} was declined{reason}; "
                "the seats were released."
            )
        case NoticeKind.PAYMENT_CANCELLED:
            return f"Your payment for {order} was cancelled; you will not be charged for it."
