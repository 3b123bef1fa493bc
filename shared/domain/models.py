"""Aggregates and their state machines: musicals, reservations, payments.

Models serialise to the camelCase JSON documents stored in Cosmos DB (and served by the API).
Each stored document has a `type` so that one container can hold several kinds of document
(a musical, its reservations and their events share the musical's partition).
"""

from __future__ import annotations

import functools
import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.domain.errors import InvalidTransition, ReservationExpired, ReservationRejected
from shared.domain.timestamps import UtcTimestamp


class CamelModel(BaseModel):
    """A model whose JSON form is camelCase, validated from documents and API bodies alike."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class StoredModel(CamelModel):
    """A model stored as one document; `DOC_TYPE` tells documents apart within a container."""

    DOC_TYPE: ClassVar[str]
    etag: str | None = Field(default=None, alias="_etag", exclude=True)

    def to_document(self) -> dict[str, Any]:
        return {**self.to_json_dict(), "type": self.DOC_TYPE}

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Self:
        return cls.model_validate(document)

    @classmethod
    def served(cls, document: dict[str, Any]) -> dict[str, Any]:
        """The model's API form (`to_json_dict`) read off a document it stored, without
        validating it again: `to_document` wrote every field in that form. A document missing
        a field (written before the field existed) goes through the model."""
        try:
            return {name: document[name] for name in cls.served_fields()}
        except KeyError:
            return cls.from_document(document).to_json_dict()

    @classmethod
    @functools.cache
    def served_fields(cls) -> tuple[str, ...]:
        """The API form's fields, in its order: the stored document's fields less its keys."""
        return tuple(
            field.alias or name for name, field in cls.model_fields.items() if not field.exclude
        )


class Musical(StoredModel):
    DOC_TYPE: ClassVar[str] = "musical"

    id: str
    title: str
    total_seats: int
    available_seats: int
    price: int
    venue: str | None = None
    performance_at: datetime | None = None
    max_seats_per_customer: int | None = None
    created_at: UtcTimestamp

    def to_document(self) -> dict[str, Any]:
        return {**super().to_document(), "musicalId": self.id}

    def to_api(self) -> dict[str, Any]:
        return self.to_json_dict()


class CatalogEntry(StoredModel):
    """The musical's line in the catalog partition, which `GET /musicals` pages through."""

    DOC_TYPE: ClassVar[str] = "catalogEntry"
    PARTITION: ClassVar[str] = "catalog"

    id: str
    title: str
    created_at: UtcTimestamp
    seated: bool = False
    """A seated musical (docs/seating.md): the catalog page serves it through its model."""

    def to_document(self) -> dict[str, Any]:
        return {**super().to_document(), "musicalId": self.PARTITION}


class ReservationStatus(StrEnum):
    RESERVED = "Reserved"
    CONFIRMED = "Confirmed"
    REJECTED = "Rejected"
    CANCELLED = "Cancelled"
    EXPIRED = "Expired"
    """Its payment was not approved by the payment deadline: seats given back."""


_RESERVATION_TRANSITIONS: dict[ReservationStatus, frozenset[ReservationStatus]] = {
    ReservationStatus.RESERVED: frozenset(
        {
            ReservationStatus.CONFIRMED,
            ReservationStatus.REJECTED,
            ReservationStatus.CANCELLED,
            ReservationStatus.EXPIRED,
        }
    ),
    ReservationStatus.CONFIRMED: frozenset({ReservationStatus.CANCELLED}),
    ReservationStatus.REJECTED: frozenset(),
    ReservationStatus.CANCELLED: frozenset(),
    ReservationStatus.EXPIRED: frozenset(),
}

SEAT_HOLDING_STATUSES = frozenset({ReservationStatus.RESERVED, ReservationStatus.CONFIRMED})


class Reservation(StoredModel):
    DOC_TYPE: ClassVar[str] = "reservation"

    id: str
    musical_id: str
    musical_title: str
    customer_id: str
    seats: int
    amount: int
    status: ReservationStatus
    correlation_id: str
    created_at: UtcTimestamp
    updated_at: UtcTimestamp
    seat_limit: int | None = Field(
        default=None,
        description="The musical's maxSeatsPerCustomer when placed: the seats are counted in "
        "the customer's SeatHolding, and given back there too.",
    )

    def can_become(self, status: ReservationStatus) -> bool:
        return status in _RESERVATION_TRANSITIONS[self.status]

    def moved_to(self, status: ReservationStatus, at: datetime) -> Reservation:
        """The reservation in `status`; raises InvalidTransition when the machine forbids it."""
        if not self.can_become(status):
            raise InvalidTransition(f"reservation {self.id} cannot go {self.status} → {status}")
        return self.model_copy(update={"status": status, "updated_at": at})

    @property
    def holds_seats(self) -> bool:
        return self.status in SEAT_HOLDING_STATUSES

    def cancel_changes_it(self) -> bool:
        """Whether a cancel has something to do: False when it is Cancelled already (the cancel
        answers it unchanged); ReservationRejected or ReservationExpired when it ended so."""
        if self.status is ReservationStatus.REJECTED:
            raise ReservationRejected(f"reservation {self.id} was rejected; nothing to cancel")
        if self.status is ReservationStatus.EXPIRED:
            raise ReservationExpired(f"reservation {self.id} expired unpaid; nothing to cancel")
        return self.status is not ReservationStatus.CANCELLED

    def seated_facts(self) -> dict[str, Any]:
        """What a seated reservation's events add (shared.domain.performances); none here."""
        return {}


class PaymentStatus(StrEnum):
    PENDING = "Pending"
    APPROVED = "Approved"
    DECLINED = "Declined"
    DEFERRED = "Deferred"
    REFUNDING = "Refunding"
    CANCELLED = "Cancelled"


class Payment(StoredModel):
    """The payment of one reservation, in the payments container (partition = reservation id).

    `confirm_attempts` counts confirm calls that may have reached the gateway: when it is
    non-zero the gateway may hold a charge even if no answer was recorded (the instance may have
    died, or the call timed out after the gateway approved), so a cancellation looks the order
    up at the gateway and refunds what it finds before it can say "not charged";
    `last_attempt_at` is when the latest of them was sent (a lookup that finds nothing soon
    after it may be overtaken by that confirm). `refund_amount` is how much a cancel gives
    back (None: everything charged); `refunded_amount` what was given back, once done.
    `Refunding`: a cancel is asked for and a charge may stand that the gateway has not yet
    cancelled; it ends `Cancelled`.
    """

    DOC_TYPE: ClassVar[str] = "payment"

    id: str
    reservation_id: str
    musical_id: str
    customer_id: str
    amount: int
    order_name: str
    status: PaymentStatus
    correlation_id: str
    payment_key: str | None = None
    confirm_attempts: int = 0
    deferrals: int = 0
    cancel_requested: bool = False
    refunded: bool = False
    decline_code: str | None = None
    next_attempt_at: UtcTimestamp | None = None
    last_attempt_at: UtcTimestamp | None = None
    refund_amount: int | None = None
    refunded_amount: int | None = None
    charge_by: UtcTimestamp | None = None
    """The reservation's payment deadline: no charge is begun from then on (it expires unpaid,
    and a charge would only be refunded). None: no deadline."""
    created_at: UtcTimestamp
    updated_at: UtcTimestamp

    @property
    def may_be_charged(self) -> bool:
        """True once a confirm call may have reached the gateway, answered or not."""
        return self.payment_key is not None or self.confirm_attempts > 0

    @property
    def is_settled(self) -> bool:
        """Nothing is left to do: charged as asked, declined, or cancelled and not charged."""
        if self.cancel_requested:
            return self.status is PaymentStatus.DECLINED or (
                self.status is PaymentStatus.CANCELLED
                and (self.refunded or not self.may_be_charged)
            )
        return self.status in (PaymentStatus.APPROVED, PaymentStatus.DECLINED)


class SeatHolding(StoredModel):
    """The seats one customer holds (Reserved or Confirmed) in one musical with a
    maxSeatsPerCustomer, in the musical's partition: the reservation batch takes seats here with
    a conditional patch (`seats <= limit - wanted`), so parallel requests of one customer can
    never go over the limit; every move that gives seats back gives them back here too."""

    DOC_TYPE: ClassVar[str] = "seatHolding"

    id: str
    musical_id: str
    customer_id: str
    seats: int

    @staticmethod
    def id_for(customer_id: str) -> str:
        """A fixed-length id whatever the customer id holds (Cosmos ids forbid / \\ ? #)."""
        return "holding-" + hashlib.sha256(customer_id.encode()).hexdigest()[:40]


class IdempotencyRecord(StoredModel):
    """Remembers, for a day (container TTL), which reservation an Idempotency-Key stands for.

    A key names one request: the first body sent with it is the one carried out, and every
    later request with that key answers with the same reservation.
    """

    DOC_TYPE: ClassVar[str] = "idempotencyKey"

    id: str
    customer_id: str
    musical_id: str
    seats: int
    reservation_id: str
    created_at: UtcTimestamp


class NoticeKind(StrEnum):
    PAYMENT_APPROVED = "payment-approved"
    PAYMENT_DECLINED = "payment-declined"
    PAYMENT_CANCELLED = "payment-cancelled"
    RESERVATION_EXPIRED = "reservation-expired"


class NoticeStatus(StrEnum):
    PENDING = "Pending"
    SENT = "Sent"


class Notice(StoredModel):
    """One notification per (reservation, kind), in the notices container (partition: customer).

    Created Pending; a delivery claims it for a short lease (`sending_until`) before sending and
    marks it Sent after, so two deliveries of one message never both send it, and a crash
    mid-way resends it once the lease has run out (with the notice id as the provider's
    idempotency key) rather than skipping it.
    """

    DOC_TYPE: ClassVar[str] = "notice"

    id: str
    customer_id: str
    reservation_id: str
    musical_id: str
    kind: NoticeKind
    message: str
    status: NoticeStatus
    correlation_id: str
    created_at: UtcTimestamp
    sending_until: UtcTimestamp | None = None
    sent_at: UtcTimestamp | None = None

    @staticmethod
    def id_for(reservation_id: str, kind: NoticeKind) -> str:
        return f"{reservation_id}.{kind}"
