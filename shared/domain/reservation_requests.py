"""The body of `POST /reservations`: general admission (`musicalId`, `seats`) or seated
(`performanceId` with `seatIds`, or with `grade` and `seats`), told apart by their fields."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, RootModel, Tag

from shared.domain.commands import PlaceReservation
from shared.domain.seating_commands import ReserveBestAvailable, ReserveSeats


def _kind(body: Any) -> str:
    if isinstance(body, dict) and "performanceId" in body:
        return "seatIds" if "seatIds" in body else "bestAvailable"
    return "generalAdmission"


_Body = Annotated[
    Annotated[PlaceReservation, Tag("generalAdmission")]
    | Annotated[ReserveSeats, Tag("seatIds")]
    | Annotated[ReserveBestAvailable, Tag("bestAvailable")],
    Discriminator(_kind),
]


class ReservationRequest(RootModel[_Body]):
    root: _Body
