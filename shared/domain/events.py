"""Domain events: past-tense facts, stored as outbox documents and relayed to Service Bus.

An event document lives in the same partition as the state change that raised it and is
written in the same transactional batch, so an event exists if and only if its change committed
(transactional outbox). Event ids are deterministic — one per (reservation, kind) — so a
transition replayed after a redelivery collides with its own event and changes nothing, and the
relay's `message_id` (= event id) lets Service Bus drop duplicates.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field

from shared.domain.models import CamelModel, Payment, Reservation, ReservationStatus
from shared.domain.timestamps import UtcTimestamp


class EventType(StrEnum):
    RESERVATION_PLACED = "ReservationPlaced"
    RESERVATION_CONFIRMED = "ReservationConfirmed"
    RESERVATION_REJECTED = "ReservationRejected"
    RESERVATION_CANCELLED = "ReservationCancelled"
    RESERVATION_EXPIRED = "ReservationExpired"
    PAYMENT_APPROVED = "PaymentApproved"
    PAYMENT_DECLINED = "PaymentDeclined"
    PAYMENT_DEFERRED = "PaymentDeferred"
    PAYMENT_CANCELLED = "PaymentCancelled"


# The status each reservation event brings its reservation to (one event per status).
RESERVATION_EVENT_STATUS: dict[EventType, ReservationStatus] = {
    EventType.RESERVATION_PLACED: ReservationStatus.RESERVED,
    EventType.RESERVATION_CONFIRMED: ReservationStatus.CONFIRMED,
    EventType.RESERVATION_REJECTED: ReservationStatus.REJECTED,
    EventType.RESERVATION_CANCELLED: ReservationStatus.CANCELLED,
    EventType.RESERVATION_EXPIRED: ReservationStatus.EXPIRED,
}
# The event a reservation raises on reaching each status.
STATUS_EVENT: dict[ReservationStatus, EventType] = {
    status: event_type for event_type, status in RESERVATION_EVENT_STATUS.items()
}
# The status a payment's outcome moves its reservation to.
PAYMENT_OUTCOME_STATUS: dict[EventType, ReservationStatus] = {
    EventType.PAYMENT_APPROVED: ReservationStatus.CONFIRMED,
    EventType.PAYMENT_DECLINED: ReservationStatus.REJECTED,
}


class EventStream(StrEnum):
    """The streams events are published on; `shared.topology` names a topic after each."""

    RESERVATION = "reservation"
    CANCEL = "cancel"
    PAYMENT = "payment"


# The stream each event is relayed to; events absent here stay in the store (the history
# projection reads them from the change feed).
EVENT_TOPICS: dict[EventType, str] = {
    EventType.RESERVATION_PLACED: EventStream.RESERVATION,
    EventType.RESERVATION_CANCELLED: EventStream.CANCEL,
    # An expiry is a cancel with no fee for the payment side (any late charge is cancelled),
    # and the notice function tells the customer.
    EventType.RESERVATION_EXPIRED: EventStream.CANCEL,
    EventType.PAYMENT_APPROVED: EventStream.PAYMENT,
    EventType.PAYMENT_DECLINED: EventStream.PAYMENT,
    EventType.PAYMENT_DEFERRED: EventStream.PAYMENT,
    EventType.PAYMENT_CANCELLED: EventStream.PAYMENT,
}

# Outbox (event) documents live this long after they are written; the change feed has long
# relayed them by then.
OUTBOX_TTL_SECONDS = 7 * 86_400


class ReservationFacts(CamelModel):
    """What every reservation event carries: enough to act on it without another read."""

    reservation_id: str
    musical_id: str
    musical_title: str
    customer_id: str
    seats: int
    amount: int
    created_at: UtcTimestamp
    # Seated reservations only (docs/seating.md).
    performance_id: str | None = None
    starts_at: datetime | None = None
    seat_ids: list[str] | None = None
    cancellation_fee: int | None = None
    refund_amount: int | None = None

    @classmethod
    def of(cls, reservation: Reservation) -> ReservationFacts:
        return cls(
            reservation_id=reservation.id,
            musical_id=reservation.musical_id,
            musical_title=reservation.musical_title,
            customer_id=reservation.customer_id,
            seats=reservation.seats,
            amount=reservation.amount,
            created_at=reservation.created_at,
            **reservation.seated_facts(),
        )


class PaymentFacts(CamelModel):
    reservation_id: str
    musical_id: str
    customer_id: str
    amount: int
    order_name: str | None = None
    payment_key: str | None = None
    reason: str | None = None
    refunded_amount: int | None = None
    """On PaymentCancelled: what was refunded (None: nothing was charged)."""

    @classmethod
    def of(cls, payment: Payment, reason: str | None = None) -> PaymentFacts:
        return cls(
            reservation_id=payment.reservation_id,
            musical_id=payment.musical_id,
            customer_id=payment.customer_id,
            amount=payment.amount,
            order_name=payment.order_name,
            payment_key=payment.payment_key,
            reason=reason,
            refunded_amount=payment.refunded_amount if payment.refunded else None,
        )


class Event(CamelModel):
    """The envelope: stored as an outbox document and sent as a message body."""

    DOC_TYPE: ClassVar[str] = "event"

    event_id: str
    event_type: EventType
    correlation_id: str
    occurred_at: UtcTimestamp
    payload: dict[str, Any] = Field(default_factory=dict)
    # The W3C trace context (`traceparent`, `tracestate`) the event was raised in: stamped by
    # the store as it writes the event, carried on by the relay in the message's application
    # properties, so that its consumers continue the same trace.
    trace_context: dict[str, str] = Field(default_factory=dict)

    @property
    def topic(self) -> str | None:
        return EVENT_TOPICS.get(self.event_type)

    def to_document(self, partition_field: str, partition_value: str) -> dict[str, Any]:
        return {
            "id": self.event_id,
            partition_field: partition_value,
            "type": self.DOC_TYPE,
            "topic": self.topic,
            "ttl": OUTBOX_TTL_SECONDS,
            **self.to_json_dict(),
        }

    def reservation(self) -> ReservationFacts:
        return ReservationFacts.model_validate(self.payload)

    def payment(self) -> PaymentFacts:
        return PaymentFacts.model_validate(self.payload)


_EVENT_SUFFIX: dict[EventType, str] = {
    EventType.RESERVATION_PLACED: "placed",
    EventType.RESERVATION_CONFIRMED: "confirmed",
    EventType.RESERVATION_REJECTED: "rejected",
    EventType.RESERVATION_CANCELLED: "cancelled",
    EventType.RESERVATION_EXPIRED: "expired",
    EventType.PAYMENT_APPROVED: "payment-approved",
    EventType.PAYMENT_DECLINED: "payment-declined",
    EventType.PAYMENT_DEFERRED: "payment-deferred",
    EventType.PAYMENT_CANCELLED: "payment-cancelled",
}


def event_id(reservation_id: str, event_type: EventType) -> str:
    return f"{reservation_id}.{_EVENT_SUFFIX[event_type]}"


def reservation_event(event_type: EventType, reservation: Reservation, at: datetime) -> Event:
    return Event(
        event_id=event_id(reservation.id, event_type),
        event_type=event_type,
        correlation_id=reservation.correlation_id,
        occurred_at=at,
        payload=ReservationFacts.of(reservation).to_json_dict(),
    )


def payment_event(
    event_type: EventType, payment: Payment, at: datetime, reason: str | None = None
) -> Event:
    return Event(
        event_id=event_id(payment.reservation_id, event_type),
        event_type=event_type,
        correlation_id=payment.correlation_id,
        occurred_at=at,
        payload=PaymentFacts.of(payment, reason).to_json_dict(),
    )
