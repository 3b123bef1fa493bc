"""Seated musicals as stored: the musical, its performances, and what each section partition
of a performance holds (its seat counter, the held seats, the reservations).

A performance lives in the `performances` container, partitioned by `partitionKey`:
- the performance partition (`{performance}`): the Performance document (with a copy of the
  seat map, immutable) and one SeatAllowance per customer when the musical caps seats;
- one partition per section (`{performance}-{section}`): its SectionCounter, one HeldSeat
  per held seat (id = seat id, so a second hold of a seat conflicts), the reservations whose
  seats lie there and their outbox events.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import Field

from shared.domain.ids import idempotency_record_id, section_partition
from shared.domain.models import CamelModel, Reservation, StoredModel
from shared.domain.seating import SeatMap
from shared.domain.timestamps import UtcTimestamp

PARTITION_FIELD = "partitionKey"


class PerformanceSlot(CamelModel):
    """A performance as its musical lists it."""

    id: str
    starts_at: datetime


class SeatedMusical(StoredModel):
    """A musical with a seat map and performances, in the musicals container like any other."""

    DOC_TYPE: ClassVar[str] = "seatedMusical"

    id: str
    title: str
    total_seats: int
    available_seats: None = None
    price: None = None
    venue: str | None = None
    grades: dict[str, int]
    sections: list[dict[str, Any]]
    performances: list[PerformanceSlot]
    max_seats_per_customer: int | None = None
    created_at: UtcTimestamp

    def to_document(self) -> dict[str, Any]:
        return {**super().to_document(), "musicalId": self.id}

    @property
    def seat_map(self) -> SeatMap:
        return SeatMap.model_validate({"grades": self.grades, "sections": self.sections})

    def to_api(self, performances: list[PerformanceView] | None = None) -> dict[str, Any]:
        """The Musical of the API; without live `performances`, each one as listed (no counts)."""
        answer = self.to_json_dict()
        if performances is not None:
            answer["performances"] = [view.to_json_dict() for view in performances]
        else:
            for slot in answer["performances"]:
                slot.update(musicalId=self.id, totalSeats=self.total_seats)
        return answer


class Performance(StoredModel):
    """One performance: when, and the hall it sells (a copy of its musical's seat map)."""

    DOC_TYPE: ClassVar[str] = "performance"

    id: str
    musical_id: str
    musical_title: str
    starts_at: datetime
    seat_map: SeatMap
    max_seats_per_customer: int | None = None
    created_at: UtcTimestamp

    def to_document(self) -> dict[str, Any]:
        return {**super().to_document(), PARTITION_FIELD: self.id}


class PerformanceView(CamelModel):
    """A performance as the API answers it (openapi.yaml), counts summed from its sections."""

    id: str
    musical_id: str
    starts_at: datetime
    total_seats: int
    available_seats: int
    available_by_grade: dict[str, int]


COUNTER_ID = "counter"


class SectionCounter(StoredModel):
    """The free seats of one section of one performance, moved in every batch that holds or
    frees seats there; `version` counts those batches (shared.handlers.seat_book)."""

    DOC_TYPE: ClassVar[str] = "sectionCounter"

    id: str = COUNTER_ID
    performance_id: str
    section_id: str
    total_seats: int
    available_seats: int
    version: int = 0

    def to_document(self) -> dict[str, Any]:
        partition = section_partition(self.performance_id, self.section_id)
        return {**super().to_document(), PARTITION_FIELD: partition}


class HeldSeat(StoredModel):
    """A seat held by a Reserved or Confirmed reservation; its id is the seat id."""

    DOC_TYPE: ClassVar[str] = "heldSeat"

    id: str
    performance_id: str
    section_id: str
    reservation_id: str

    def to_document(self) -> dict[str, Any]:
        partition = section_partition(self.performance_id, self.section_id)
        return {**super().to_document(), PARTITION_FIELD: partition}


class AllowanceHold(CamelModel):
    """Seats one placement counted in a SeatAllowance, until they come back.

    `sections` are where its reservation may lie (one for explicit seats; the grade's sections
    for best available, whose section is chosen after the allowance is taken), `suffix` the
    reservation id's suffix: together they find the reservation (docs/seating.md). `placed` is
    set by the sweeper once it has seen the reservation, so that it is not looked for again."""

    seats: int
    suffix: str
    sections: list[str]
    at: UtcTimestamp
    placed: bool = False


class SeatAllowance(StoredModel):
    """How many seats of one performance one customer holds (maxSeatsPerCustomer), and which
    placements hold them (`holds`, by key): giving seats back removes its hold, guarded by the
    hold's presence, so a give-back done twice (a redelivery, the sweeper's repair) counts once."""

    DOC_TYPE: ClassVar[str] = "seatAllowance"

    id: str
    performance_id: str
    customer_id: str
    seats: int = 0
    holds: dict[str, AllowanceHold] = {}
    updated_at: UtcTimestamp | None = None
    """When a hold was last taken (the sweeper reads an allowance once it has been quiet)."""

    @staticmethod
    def id_for(customer_id: str) -> str:
        return f"allowance-{idempotency_record_id(customer_id)[:40]}"

    @staticmethod
    def new_hold_key() -> str:
        """A field name (letters and digits, as patch paths take) unique to one placement."""
        return f"h{uuid.uuid4().hex}"

    def to_document(self) -> dict[str, Any]:
        return {**super().to_document(), PARTITION_FIELD: self.performance_id}


class SeatedReservation(Reservation):
    """A reservation of chosen seats of one performance, stored in its section partition."""

    performance_id: str
    section_id: str
    starts_at: datetime
    seat_ids: list[str] = Field(min_length=1)
    cancellation_fee: int | None = None
    refund_amount: int | None = None
    allowance_hold: str | None = None
    """The key of its hold in the customer's SeatAllowance (a performance with a cap)."""

    def to_document(self) -> dict[str, Any]:
        partition = section_partition(self.performance_id, self.section_id)
        return {**super().to_document(), PARTITION_FIELD: partition}

    def seated_facts(self) -> dict[str, Any]:
        return {
            "performance_id": self.performance_id,
            "starts_at": self.starts_at,
            "seat_ids": self.seat_ids,
            "cancellation_fee": self.cancellation_fee,
            "refund_amount": self.refund_amount,
        }


class SeatedOrder(StoredModel):
    """What an Idempotency-Key stands for in a seated request (idempotency container, a day).

    The reservation id is recorded before any seat is held: at once for explicit seats, and for
    best available once its section is chosen (the id names the section). Until then nothing
    was placed under the key.
    """

    DOC_TYPE: ClassVar[str] = "seatedOrder"

    id: str
    customer_id: str
    performance_id: str
    suffix: str
    seat_ids: list[str] | None = None
    grade: str | None = None
    seats: int
    reservation_id: str | None = None
    created_at: UtcTimestamp


def payment_deadline(
    created_at: datetime, deadline: timedelta, starts_at: datetime | None
) -> datetime:
    """When an unpaid reservation expires: `deadline` after its creation, and for a seated one
    never after its performance starts (docs/seating.md)."""
    due = created_at + deadline
    return due if starts_at is None else min(due, starts_at)
