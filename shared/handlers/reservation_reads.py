"""GET /reservations/{id}: one point read in the musical's partition, served as stored.

The reservation id names its partition (its musical's), and the stored document is the
reservation's API form plus its keys (`Reservation.served`): the answer costs one read and
a copy of its fields, on the event loop, without a model. A seated reservation's id names its
section partition of the performances container the same way.
"""

from __future__ import annotations

from typing import Any

from shared.domain.caller import Caller
from shared.domain.errors import NotFoundError
from shared.domain.ids import musical_id_of, seated_partition_of, section_partition
from shared.domain.models import Reservation
from shared.domain.performances import SeatedReservation
from shared.ports import AsyncDocumentStore, NotFound
from shared.topology import MUSICALS, PERFORMANCES


async def read_reservation(
    reservation_id: str, caller: Caller, store: AsyncDocumentStore
) -> dict[str, Any]:
    """The reservation, if the caller owns it or is an admin; otherwise it does not exist."""
    musical_id = musical_id_of(reservation_id)
    seated = seated_partition_of(reservation_id)
    located = (
        (MUSICALS.name, musical_id)
        if musical_id is not None
        else (PERFORMANCES.name, section_partition(*seated))
        if seated is not None
        else None
    )
    if located is not None:
        try:
            document = await store.read_async(*located, reservation_id)
        except NotFound:
            document = {}
        if document.get("type") == Reservation.DOC_TYPE and (
            caller.is_admin or document.get("customerId") == caller.customer_id
        ):
            model = Reservation if seated is None else SeatedReservation
            return model.served(document)
    raise NotFoundError(f"no reservation {reservation_id!r}")
