"""What one changed document tells the history view: zero or more facts about reservations.

The change feed hands over the latest version of each document, in no order across
containers, possibly more than once. A fact is therefore a statement that stays true
("reservation R was confirmed at T", "payment of R reached Approved"), never an instruction,
so that folding the same set of facts in any order gives the same item.

Sources, by document type:
- `event` (musicals and payments containers): one fact per reservation or payment event;
- `reservation` (musicals): its details, its placement and its current status, so the view
  survives the outbox events' TTL when it is rebuilt;
- `payment` (payments): its current status (the only source of `Pending`);
- `notice` (notices): once `Sent`, the notice and its step.
Everything else (musicals, catalog entries, pending notices, unknown event types) says nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shared.domain.events import RESERVATION_EVENT_STATUS, STATUS_EVENT, Event, EventType
from shared.domain.models import (
    CamelModel,
    Notice,
    NoticeStatus,
    Payment,
    PaymentStatus,
    Reservation,
    ReservationStatus,
)
from shared.domain.performances import SeatedReservation
from shared.domain.timestamps import UtcTimestamp

log = logging.getLogger("outerpark.history")

NOTICE_SENT = "NoticeSent"

PAYMENT_EVENT_STATUS: dict[EventType, PaymentStatus] = {
    EventType.PAYMENT_APPROVED: PaymentStatus.APPROVED,
    EventType.PAYMENT_DECLINED: PaymentStatus.DECLINED,
    EventType.PAYMENT_DEFERRED: PaymentStatus.DEFERRED,
    EventType.PAYMENT_CANCELLED: PaymentStatus.CANCELLED,
}


class ReservationDetails(CamelModel):
    """What a reservation is: never changes once placed."""

    musical_id: str
    musical_title: str
    seats: int
    amount: int
    created_at: UtcTimestamp
    # Seated reservations only (docs/seating.md).
    performance_id: str | None = None
    starts_at: datetime | None = None
    seat_ids: list[str] | None = None


class NoticeEntry(CamelModel):
    kind: str
    message: str
    sent_at: UtcTimestamp


class TimelineStep(CamelModel):
    """One step of a reservation's progress. `kind` tells notices apart (None otherwise)."""

    type: str
    at: UtcTimestamp
    kind: str | None = None


class HistoryFact(CamelModel):
    """One thing known about one reservation, as of `at`."""

    customer_id: str
    reservation_id: str
    at: UtcTimestamp
    details: ReservationDetails | None = None
    musical_id: str | None = None
    amount: int | None = None
    reservation_status: ReservationStatus | None = None
    payment_status: PaymentStatus | None = None
    step: TimelineStep | None = None
    notice: NoticeEntry | None = None
    cancellation_fee: int | None = None
    refund_amount: int | None = None


def facts_of(document: Mapping[str, Any]) -> list[HistoryFact]:
    """The facts a changed document states; [] for documents the view does not use.

    A document of a known type that does not validate can never succeed on a retry, so it is
    logged and skipped rather than blocking the feed behind it.
    """
    reader = _READERS.get(str(document.get("type")))
    if reader is None:
        return []
    try:
        return reader(document)
    except ValidationError as error:
        log.warning(
            "history ignores malformed %s document %r: %s",
            document.get("type"),
            document.get("id"),
            error.errors(include_url=False),
        )
        return []


def _from_event(document: Mapping[str, Any]) -> list[HistoryFact]:
    if document.get("eventType") not in set(EventType):
        return []
    event = Event.model_validate(document)
    step = TimelineStep(type=event.event_type.value, at=event.occurred_at)
    if event.event_type in RESERVATION_EVENT_STATUS:
        facts = event.reservation()
        return [
            HistoryFact(
                customer_id=facts.customer_id,
                reservation_id=facts.reservation_id,
                at=event.occurred_at,
                details=ReservationDetails.model_validate(facts.model_dump()),
                reservation_status=RESERVATION_EVENT_STATUS[event.event_type],
                step=step,
                cancellation_fee=facts.cancellation_fee,
                refund_amount=facts.refund_amount,
            )
        ]
    payment = event.payment()
    return [
        HistoryFact(
            customer_id=payment.customer_id,
            reservation_id=payment.reservation_id,
            at=event.occurred_at,
            musical_id=payment.musical_id,
            amount=payment.amount,
            payment_status=PAYMENT_EVENT_STATUS[event.event_type],
            step=step,
        )
    ]


def _from_reservation(document: Mapping[str, Any]) -> list[HistoryFact]:
    """Placement at `createdAt`, and the current status at `updatedAt`: the same steps, at
    the same times, as the events written in the same batch."""
    seated = "performanceId" in document
    reservation = (SeatedReservation if seated else Reservation).from_document(dict(document))
    details = ReservationDetails.model_validate(reservation.model_dump())
    placed = HistoryFact(
        customer_id=reservation.customer_id,
        reservation_id=reservation.id,
        at=reservation.created_at,
        details=details,
        reservation_status=ReservationStatus.RESERVED,
        step=TimelineStep(type=EventType.RESERVATION_PLACED.value, at=reservation.created_at),
    )
    if reservation.status is ReservationStatus.RESERVED:
        return [placed]
    current = HistoryFact(
        customer_id=reservation.customer_id,
        reservation_id=reservation.id,
        at=reservation.updated_at,
        details=details,
        reservation_status=reservation.status,
        step=TimelineStep(type=STATUS_EVENT[reservation.status].value, at=reservation.updated_at),
        cancellation_fee=getattr(reservation, "cancellation_fee", None),
        refund_amount=getattr(reservation, "refund_amount", None),
    )
    return [placed, current]


def _from_payment(document: Mapping[str, Any]) -> list[HistoryFact]:
    payment = Payment.from_document(dict(document))
    return [
        HistoryFact(
            customer_id=payment.customer_id,
            reservation_id=payment.reservation_id,
            at=payment.updated_at,
            musical_id=payment.musical_id,
            amount=payment.amount,
            payment_status=payment.status,
        )
    ]


def _from_notice(document: Mapping[str, Any]) -> list[HistoryFact]:
    notice = Notice.from_document(dict(document))
    if notice.status is not NoticeStatus.SENT or notice.sent_at is None:
        return []
    return [
        HistoryFact(
            customer_id=notice.customer_id,
            reservation_id=notice.reservation_id,
            at=notice.sent_at,
            musical_id=notice.musical_id,
            step=TimelineStep(type=NOTICE_SENT, at=notice.sent_at, kind=notice.kind.value),
            notice=NoticeEntry(
                kind=notice.kind.value, message=notice.message, sent_at=notice.sent_at
            ),
        )
    ]


_READERS = {
    Event.DOC_TYPE: _from_event,
    Reservation.DOC_TYPE: _from_reservation,
    Payment.DOC_TYPE: _from_payment,
    Notice.DOC_TYPE: _from_notice,
}
