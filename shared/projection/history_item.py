"""One reservation's line in its customer's history, folded from the facts seen so far.

Folding is order-free, duplicate-free and never goes backwards, because every field is a
join of the facts, not the last one seen:
- details (title, seats, amount, createdAt) are immutable: any reservation fact sets them;
  payment and notice facts only fill `musicalId` / `amount` while no reservation fact came;
- a status is the highest one seen, ranked along its state machine (shared.domain.models):
  reservation Reserved < Confirmed < Rejected < Cancelled (Rejected and Cancelled are both
  final and exclusive); payment Pending < Deferred < Approved < Declined < Cancelled, so a
  cancel after an approval shows Cancelled and a late Deferred never hides an Approved;
- the timeline keeps one step per (type, kind) at its earliest time, sorted by time;
- notices are kept one per kind; `updatedAt` is the latest time of any fact;
- `createdAt` is the reservation's own, or, before any reservation fact came, the earliest
  time seen (a payment can be projected before its placement; the item still sorts sensibly).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar

from shared.domain.models import PaymentStatus, ReservationStatus, StoredModel
from shared.domain.timestamps import UtcTimestamp
from shared.projection.facts import HistoryFact, NoticeEntry, TimelineStep

RESERVATION_RANK: dict[ReservationStatus, int] = {
    ReservationStatus.RESERVED: 0,
    ReservationStatus.CONFIRMED: 1,
    ReservationStatus.REJECTED: 2,
    ReservationStatus.CANCELLED: 3,
    ReservationStatus.EXPIRED: 4,
}
PAYMENT_RANK: dict[PaymentStatus, int] = {
    PaymentStatus.PENDING: 0,
    PaymentStatus.DEFERRED: 1,
    PaymentStatus.APPROVED: 2,
    PaymentStatus.DECLINED: 3,
    PaymentStatus.REFUNDING: 4,
    PaymentStatus.CANCELLED: 5,
}

# The fields of the HistoryItem schema of openapi.yaml, plus createdAt (the order of the list).
API_FIELDS = (
    "reservationId",
    "musicalId",
    "musicalTitle",
    "seats",
    "amount",
    "reservationStatus",
    "paymentStatus",
    "notices",
    "timeline",
    "createdAt",
    "updatedAt",
    # Seated reservations (docs/seating.md): null on a general-admission item, and the fee and
    # refund null until a cancel.
    "performanceId",
    "startsAt",
    "seatIds",
    "cancellationFee",
    "refundAmount",
)


class HistoryItem(StoredModel):
    """Stored in the customercenter container (partition: customer), id = reservation id."""

    DOC_TYPE: ClassVar[str] = "historyItem"

    id: str
    customer_id: str
    reservation_id: str
    musical_id: str | None = None
    musical_title: str | None = None
    seats: int | None = None
    amount: int | None = None
    reservation_status: ReservationStatus | None = None
    payment_status: PaymentStatus | None = None
    notices: list[NoticeEntry] = []
    timeline: list[TimelineStep] = []
    created_at: UtcTimestamp
    updated_at: UtcTimestamp
    performance_id: str | None = None
    starts_at: datetime | None = None
    seat_ids: list[str] | None = None
    cancellation_fee: int | None = None
    refund_amount: int | None = None

    @classmethod
    def from_facts(cls, facts: Iterable[HistoryFact]) -> HistoryItem:
        facts = list(facts)
        first = facts[0]
        empty = cls(
            id=first.reservation_id,
            customer_id=first.customer_id,
            reservation_id=first.reservation_id,
            created_at=first.at,
            updated_at=first.at,
        )
        return empty.with_facts(facts)

    def with_facts(self, facts: Iterable[HistoryFact]) -> HistoryItem:
        fields: dict[str, Any] = dict(self)
        steps = {(step.type, step.kind): step for step in self.timeline}
        notices = {notice.kind: notice for notice in self.notices}
        for fact in facts:
            if (fact.customer_id, fact.reservation_id) != (self.customer_id, self.id):
                raise ValueError(f"fact about {fact.reservation_id} folded into {self.id}")
            _fold_details(fields, fact)
            if fact.refund_amount is not None:  # a cancel happens once: its terms never change
                fields["cancellation_fee"] = fact.cancellation_fee
                fields["refund_amount"] = fact.refund_amount
            fields["reservation_status"] = _highest(
                fields["reservation_status"], fact.reservation_status, RESERVATION_RANK
            )
            fields["payment_status"] = _highest(
                fields["payment_status"], fact.payment_status, PAYMENT_RANK
            )
            fields["updated_at"] = max(fields["updated_at"], fact.at)
            if fact.step is not None:
                key = (fact.step.type, fact.step.kind)
                if key not in steps or fact.step.at < steps[key].at:
                    steps[key] = fact.step
            if fact.notice is not None:
                known = notices.get(fact.notice.kind)
                if known is None or _notice_order(fact.notice) < _notice_order(known):
                    notices[fact.notice.kind] = fact.notice
        fields["timeline"] = sorted(steps.values(), key=lambda s: (s.at, s.type, s.kind or ""))
        fields["notices"] = sorted(notices.values(), key=_notice_order)
        return self.model_copy(update=fields)

    @property
    def is_placed(self) -> bool:
        """Whether a reservation fact came: before that, title and seats are unknown."""
        return self.musical_title is not None

    def to_api(self) -> dict[str, Any]:
        document = self.to_json_dict()
        return {name: document[name] for name in API_FIELDS}


def _fold_details(fields: dict[str, Any], fact: HistoryFact) -> None:
    if fact.details is not None:
        fields.update(
            musical_id=fact.details.musical_id,
            musical_title=fact.details.musical_title,
            seats=fact.details.seats,
            amount=fact.details.amount,
            created_at=fact.details.created_at,
        )
        if fact.details.performance_id is not None:
            fields.update(
                performance_id=fact.details.performance_id,
                starts_at=fact.details.starts_at,
                seat_ids=fact.details.seat_ids,
            )
        return
    if fields["musical_title"] is None:
        fields["musical_id"] = fields["musical_id"] or fact.musical_id
        fields["amount"] = fields["amount"] if fields["amount"] is not None else fact.amount
        fields["created_at"] = min(fields["created_at"], fact.at)


def _highest(current: Any, seen: Any, rank: dict[Any, int]) -> Any:
    if seen is None:
        return current
    if current is None or rank[seen] > rank[current]:
        return seen
    return current


def _notice_order(notice: NoticeEntry) -> tuple[Any, ...]:
    return (notice.sent_at, notice.kind, notice.message)
