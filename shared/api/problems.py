"""Errors as RFC 9457 problem details: the HTTP status, title and type of each domain error,
and the API layer's own errors (bad bodies, bad tokens), which carry theirs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.domain.errors import (
    DomainError,
    InvalidContinuationToken,
    NotEnoughSeats,
    NotFoundError,
    PaymentsUnavailable,
    ReservationExpired,
    ReservationRejected,
    SeatLimitReached,
)
from shared.domain.seating_errors import InvalidSeatRequest, SeatsTaken, TooLateToCancel


@dataclass(frozen=True)
class ProblemType:
    status: int
    title: str
    type_suffix: str


class ApiError(Exception):
    """An error of the HTTP layer itself (body, headers, token): it knows its problem type."""

    status: int = 400
    title: str = "Bad Request"
    type_suffix: str = "bad-request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


DOMAIN_PROBLEMS: dict[type[DomainError], ProblemType] = {
    NotFoundError: ProblemType(404, "Not Found", "not-found"),
    NotEnoughSeats: ProblemType(409, "Not enough seats", "not-enough-seats"),
    SeatLimitReached: ProblemType(409, "Seat limit reached", "seat-limit"),
    SeatsTaken: ProblemType(409, "Seats taken", "seats-taken"),
    TooLateToCancel: ProblemType(409, "Too late to cancel", "too-late-to-cancel"),
    InvalidSeatRequest: ProblemType(422, "Invalid request", "invalid-request"),
    ReservationRejected: ProblemType(409, "Reservation was rejected", "rejected"),
    ReservationExpired: ProblemType(409, "Reservation expired", "expired"),
    PaymentsUnavailable: ProblemType(503, "Payments are unavailable", "payments-unavailable"),
    InvalidContinuationToken: ProblemType(
        422, "Invalid continuation token", "invalid-continuation-token"
    ),
}


@dataclass(frozen=True)
class Problem:
    type: ProblemType
    detail: str
    headers: dict[str, str]
    extra: dict[str, Any] | None = None
    """Members the problem adds (RFC 9457 extensions), e.g. the taken `seatIds`."""


def problem_for(error: Exception) -> Problem | None:
    """The problem an error is answered with; None for an unexpected error (a 500)."""
    if isinstance(error, ApiError):
        return Problem(
            ProblemType(error.status, error.title, error.type_suffix), error.detail, error.headers
        )
    if not isinstance(error, DomainError):
        return None
    kind = next(
        (DOMAIN_PROBLEMS[cls] for cls in type(error).__mro__ if cls in DOMAIN_PROBLEMS), None
    )
    if kind is None:  # a broken invariant (e.g. InvalidTransition), not the caller's doing
        return None
    headers = (
        {"Retry-After": str(error.retry_after_seconds)}
        if isinstance(error, PaymentsUnavailable)
        else {}
    )
    extra = {"seatIds": error.seat_ids} if isinstance(error, SeatsTaken) else None
    return Problem(kind, error.detail, headers, extra)
