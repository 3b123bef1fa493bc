"""Domain errors. Each carries the HTTP status and title it maps to (RFC 9457 problem details),
so the API layer needs no table of its own."""

from __future__ import annotations


class DomainError(Exception):
    status: int = 400
    title: str = "Bad Request"
    type_suffix: str = "bad-request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class InvalidTransition(DomainError):
    status = 409
    title = "Invalid state transition"
    type_suffix = "invalid-transition"


class NotFoundError(DomainError):
    status = 404
    title = "Not Found"
    type_suffix = "not-found"


class NotEnoughSeats(DomainError):
    status = 409
    title = "Not enough seats"
    type_suffix = "not-enough-seats"


class SeatLimitReached(DomainError):
    status = 409
    title = "Seat limit reached"
    type_suffix = "seat-limit"


class ReservationRejected(DomainError):
    status = 409
    title = "Reservation was rejected"
    type_suffix = "rejected"


class PaymentsUnavailable(DomainError):
    status = 503
    title = "Payments are unavailable"
    type_suffix = "payments-unavailable"


class InvalidContinuationToken(DomainError):
    status = 422
    title = "Invalid continuation token"
    type_suffix = "invalid-continuation-token"
