"""Errors of seated reservations (docs/seating.md). Like every domain error they carry no HTTP
status: `shared.api.problems` maps them (the seat limit is `errors.SeatLimitReached`)."""

from __future__ import annotations

from collections.abc import Sequence

from shared.domain.errors import DomainError


class SeatsTaken(DomainError):
    """Some of the seats asked for are held by another reservation; nothing was held."""

    def __init__(self, seat_ids: Sequence[str]) -> None:
        super().__init__(f"seats already held: {', '.join(seat_ids)}")
        self.seat_ids = list(seat_ids)


class TooLateToCancel(DomainError):
    """The performance is today (in its own UTC offset) or over: the cancel changes nothing."""


class InvalidSeatRequest(DomainError):
    """Well-formed but not possible in this hall: an unknown seat or grade, two sections, a
    general-admission body naming a seated musical."""
