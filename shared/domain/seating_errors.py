"""Errors of seated reservations (CONTRACT §6), with the problem `type` each one ends in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.domain.errors import DomainError


class SeatsTaken(DomainError):
    """Some of the seats asked for are held by another reservation; nothing was held."""

    status = 409
    title = "Seats taken"
    type_suffix = "seats-taken"

    def __init__(self, seat_ids: Sequence[str]) -> None:
        super().__init__(f"seats already held: {', '.join(seat_ids)}")
        self.extra: dict[str, Any] = {"seatIds": list(seat_ids)}


class SeatLimitReached(DomainError):
    status = 409
    title = "Seat limit reached"
    type_suffix = "seat-limit"


class TooLateToCancel(DomainError):
    status = 409
    title = "Too late to cancel"
    type_suffix = "too-late-to-cancel"


class InvalidSeatRequest(DomainError):
    """Well-formed but not possible in this hall: an unknown seat or grade, two sections, a
    general-admission body naming a seated musical (422)."""

    status = 422
    title = "Invalid request"
    type_suffix = "invalid-request"
