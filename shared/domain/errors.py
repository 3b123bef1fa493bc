"""Domain errors: what went wrong, in the domain's terms. How an error is answered over HTTP
(status, problem type, headers) is the API layer's business: `shared.api.problems`."""

from __future__ import annotations


class DomainError(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidTransition(DomainError):
    """A state machine was asked for a step it does not take from where it is."""


class NotFoundError(DomainError):
    """No such thing, or not the caller's to see."""


class NotEnoughSeats(DomainError):
    pass


class SeatLimitReached(DomainError):
    """The customer would hold more seats than the musical's maxSeatsPerCustomer."""


class ReservationRejected(DomainError):
    """The reservation was rejected (its payment was declined): it cannot change any more."""


class ReservationExpired(DomainError):
    """The reservation expired unpaid at its payment deadline: it cannot change any more."""


class PaymentsUnavailable(DomainError):
    """New orders are refused while payments are down; worth retrying after a while."""

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class InvalidContinuationToken(DomainError):
    pass
