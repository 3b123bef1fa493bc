"""A customer's seat allowance for one performance (its `maxSeatsPerCustomer`): an item in the
performance partition counting the seats the customer holds, with one entry per hold.

A hold is added before the seats are held, by a patch guarded by the cap, and removed when the
hold fails or the seats come back, by a patch guarded by the hold's presence: a give-back
repeated after a crash counts once (`shared.handlers.sweeper` repairs one a crash skipped).
"""

from __future__ import annotations

import contextlib

from shared.domain.caller import Caller
from shared.domain.errors import SeatLimitReached
from shared.domain.performances import AllowanceHold, Performance, SeatAllowance
from shared.domain.timestamps import format_timestamp
from shared.optimistic import LostRace, retry_on_race_async
from shared.ports import (
    AsyncDocumentStore,
    BatchFailed,
    Condition,
    Conflict,
    DocumentStore,
    Incr,
    NotFound,
    Patch,
    PatchOperation,
    PreconditionFailed,
    Remove,
    Set,
)
from shared.topology import PERFORMANCES


async def take_allowance(
    performance: Performance, caller: Caller, hold: AllowanceHold, store: AsyncDocumentStore
) -> str | None:
    """Count `hold.seats` more seats against the customer's cap for this performance, under a
    new hold key (returned), or refuse. None when the performance has no cap."""
    cap = performance.max_seats_per_customer
    if cap is None:
        return None
    count = hold.seats
    if count > cap:
        raise SeatLimitReached(f"at most {cap} seats per customer for this performance")
    allowance_id = SeatAllowance.id_for(caller.customer_id)
    key = SeatAllowance.new_hold_key()

    async def attempt() -> str:
        try:
            await store.batch_async(
                PERFORMANCES.name,
                performance.id,
                [
                    Patch(
                        allowance_id,
                        [
                            Incr("seats", count),
                            Set(f"holds.{key}", hold.to_json_dict()),
                            Set("updatedAt", format_timestamp(hold.at)),
                        ],
                        condition=[Condition("seats", "<=", cap - count)],
                    )
                ],
            )
            return key
        except BatchFailed as failure:
            if isinstance(failure.cause, PreconditionFailed):
                raise SeatLimitReached(
                    f"at most {cap} seats per customer for this performance"
                ) from None
            if not isinstance(failure.cause, NotFound):
                raise
        first = SeatAllowance(
            id=allowance_id,
            performance_id=performance.id,
            customer_id=caller.customer_id,
            seats=count,
            holds={key: hold},
            updated_at=hold.at,
        )
        try:
            await store.create_async(PERFORMANCES.name, first.to_document())
        except Conflict:
            raise LostRace from None  # created meanwhile by a parallel request: patch it
        return key

    return await retry_on_race_async(attempt, f"the seat allowance of {caller.customer_id}")


def _give_back(hold_key: str, seats: int) -> tuple[list[PatchOperation], list[Condition]]:
    """The patch that gives a hold's seats back, and its condition: only while the hold is
    there, so that doing it again (after a crash, by the sweeper) changes nothing."""
    return (
        [Remove(f"holds.{hold_key}"), Incr("seats", -seats)],
        [Condition(f"holds.{hold_key}.seats", "=", seats)],
    )


async def give_allowance_back_async(
    performance_id: str,
    customer_id: str,
    hold_key: str | None,
    seats: int,
    store: AsyncDocumentStore,
) -> None:
    if hold_key is None:
        return
    operations, condition = _give_back(hold_key, seats)
    with contextlib.suppress(BatchFailed):  # given back already (or never taken)
        await store.batch_async(
            PERFORMANCES.name,
            performance_id,
            [Patch(SeatAllowance.id_for(customer_id), operations, condition)],
        )


def give_allowance_back(
    performance_id: str, customer_id: str, hold_key: str, seats: int, store: DocumentStore
) -> bool:
    """Give a hold's seats back to the customer's allowance; False when there was nothing to
    give back (done before)."""
    operations, condition = _give_back(hold_key, seats)
    allowance_id = SeatAllowance.id_for(customer_id)
    try:
        store.patch(PERFORMANCES.name, performance_id, allowance_id, operations, condition)
    except (PreconditionFailed, NotFound):
        return False
    return True
