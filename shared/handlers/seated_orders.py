"""The record of a seated request's Idempotency-Key (a `SeatedOrder`): created or rewritten,
and turned back into the command its first request carried (docs/seating.md). It is read with
`read_key_record`, as a general-admission key's record is."""

from __future__ import annotations

from datetime import datetime

from shared.domain.caller import Caller
from shared.domain.ids import new_reservation_suffix, seated_reservation_id
from shared.domain.performances import Performance, SeatedOrder, SeatedReservation
from shared.domain.seating import Seat
from shared.domain.seating_commands import ReserveBestAvailable, ReserveSeats, SeatedCommand
from shared.handlers.reservation_reads import find_seated_async
from shared.handlers.reservations import hold_key_record
from shared.ports import AsyncDocumentStore


async def placed_by(order: SeatedOrder, store: AsyncDocumentStore) -> SeatedReservation | None:
    """The reservation the key's first request placed, if it was placed. An order names its
    reservation before any seat is held (best available: once its section is chosen)."""
    if order.reservation_id is None:
        return None
    return await find_seated_async(order.reservation_id, store)


async def hold_order(
    order: SeatedOrder | None,
    record_id: str,
    caller: Caller,
    command: SeatedCommand,
    performance: Performance,
    store: AsyncDocumentStore,
    created_at: datetime,
) -> SeatedOrder:
    """Create the key's record, or rewrite the existing one (see `hold_key_record`)."""

    def fresh() -> SeatedOrder:
        suffix = new_reservation_suffix()
        seat_ids: list[str] | None = None
        grade: str | None = None
        reservation_id: str | None = None  # best available: known once its section is chosen
        if isinstance(command, ReserveSeats):
            seat_ids, seats = command.seat_ids, len(command.seat_ids)
            section = Seat.parse(seat_ids[0]).section
            reservation_id = seated_reservation_id(performance.id, section, suffix)
        else:
            grade, seats = command.grade, command.seats
        return SeatedOrder(
            id=record_id,
            customer_id=caller.customer_id,
            performance_id=performance.id,
            suffix=suffix,
            seat_ids=seat_ids,
            grade=grade,
            seats=seats,
            reservation_id=reservation_id,
            created_at=created_at,
        )

    return SeatedOrder.from_document(await hold_key_record(order, fresh, store))


def command_of(order: SeatedOrder) -> SeatedCommand:
    if order.seat_ids is not None:
        return ReserveSeats(performance_id=order.performance_id, seat_ids=order.seat_ids)
    return ReserveBestAvailable(
        performance_id=order.performance_id, grade=order.grade or "", seats=order.seats
    )
