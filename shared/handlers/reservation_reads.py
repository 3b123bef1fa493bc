"""Reading a reservation by its id: one point read, wherever its kind lives.

The id names its partition: a general-admission reservation's, its musical's; a seated one's,
its section's partition of the performances container (`locate`). `find_reservation` gives the
model to the use cases; `GET /reservations/{id}` answers with the stored document's API fields
(`Reservation.served`): one read and a copy of its fields, on the event loop, without a model.
"""

from __future__ import annotations

from typing import Any

from shared.domain.caller import Caller
from shared.domain.errors import NotFoundError
from shared.domain.ids import musical_id_of, seated_partition_of, section_partition
from shared.domain.models import Reservation
from shared.domain.performances import SeatedReservation
from shared.ports import AsyncDocumentStore, Document, DocumentStore, NotFound
from shared.topology import MUSICALS, PERFORMANCES

Location = tuple[str, str, type[Reservation]]


def locate(reservation_id: str) -> Location | None:
    """Where the reservation this id names lives, and the model stored there: a
    general-admission one in its musical's partition, a seated one in its section's; None for an
    id of neither form."""
    musical_id = musical_id_of(reservation_id)
    if musical_id is not None:
        return MUSICALS.name, musical_id, Reservation
    seated = seated_partition_of(reservation_id)
    if seated is None:
        return None
    return PERFORMANCES.name, section_partition(*seated), SeatedReservation


def find_reservation(reservation_id: str, store: DocumentStore) -> Reservation | None:
    """Any reservation by id (one point read), or None."""
    location = locate(reservation_id)
    if location is None:
        return None
    container, partition, _ = location
    try:
        return _stored(location, store.read(container, partition, reservation_id))
    except NotFound:
        return None


async def find_reservation_async(
    reservation_id: str, store: AsyncDocumentStore
) -> Reservation | None:
    """`find_reservation`, awaited."""
    location = locate(reservation_id)
    if location is None:
        return None
    container, partition, _ = location
    try:
        return _stored(location, await store.read_async(container, partition, reservation_id))
    except NotFound:
        return None


def _stored(location: Location, document: Document) -> Reservation | None:
    """The reservation in `document`; None when the id names another kind of item."""
    if document.get("type") != Reservation.DOC_TYPE:
        return None
    return location[2].from_document(document)


async def read_reservation(
    reservation_id: str, caller: Caller, store: AsyncDocumentStore
) -> dict[str, Any]:
    """The reservation, if the caller owns it or is an admin; otherwise it does not exist."""
    location = locate(reservation_id)
    if location is not None:
        container, partition, model = location
        try:
            document = await store.read_async(container, partition, reservation_id)
        except NotFound:
            document = {}
        if document.get("type") == Reservation.DOC_TYPE and (
            caller.is_admin or document.get("customerId") == caller.customer_id
        ):
            return model.served(document)
    raise NotFoundError(f"no reservation {reservation_id!r}")


def find_seated(reservation_id: str, store: DocumentStore) -> SeatedReservation | None:
    found = find_reservation(reservation_id, store)
    return found if isinstance(found, SeatedReservation) else None


async def find_seated_async(
    reservation_id: str, store: AsyncDocumentStore
) -> SeatedReservation | None:
    found = await find_reservation_async(reservation_id, store)
    return found if isinstance(found, SeatedReservation) else None


def get_seated_reservation(
    reservation_id: str, caller: Caller, store: DocumentStore
) -> SeatedReservation:
    """The reservation, if the caller owns it or is an admin; otherwise it does not exist."""
    reservation = find_seated(reservation_id, store)
    if reservation is None or not (
        caller.is_admin or reservation.customer_id == caller.customer_id
    ):
        raise NotFoundError(f"no reservation {reservation_id!r}")
    return reservation
