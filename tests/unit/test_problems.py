"""The API layer answers each domain error with its problem type; the domain knows no HTTP."""

from __future__ import annotations

import pytest

from shared.api.auth import Unauthorized
from shared.api.problems import DOMAIN_PROBLEMS, problem_for
from shared.domain import errors


@pytest.mark.parametrize(
    ("error", "status", "type_suffix"),
    [
        (errors.NotFoundError("no r1"), 404, "not-found"),
        (errors.NotEnoughSeats("2 left"), 409, "not-enough-seats"),
        (errors.ReservationRejected("declined"), 409, "rejected"),
        (errors.ReservationExpired("unpaid"), 409, "expired"),
        (errors.InvalidContinuationToken("stale"), 422, "invalid-continuation-token"),
    ],
)
def test_each_domain_error_is_answered_with_its_status_and_problem_type(
    error: errors.DomainError, status: int, type_suffix: str
) -> None:
    problem = problem_for(error)

    assert problem is not None
    assert (problem.type.status, problem.type.type_suffix) == (status, type_suffix)
    assert problem.detail == error.detail
    assert problem.headers == {}


def test_payments_unavailable_is_a_503_that_says_when_to_retry() -> None:
    problem = problem_for(errors.PaymentsUnavailable("down", retry_after_seconds=7))

    assert problem is not None
    assert problem.type.status == 503
    assert problem.headers == {"Retry-After": "7"}


def test_an_api_error_brings_its_own_status_and_headers() -> None:
    problem = problem_for(Unauthorized("no token"))

    assert problem is not None
    assert problem.type.status == 401
    assert problem.headers["WWW-Authenticate"].startswith("Bearer")


def test_domain_errors_carry_no_http_status() -> None:
    for error_type in (errors.DomainError, *errors.DomainError.__subclasses__()):
        assert not hasattr(error_type, "status"), error_type


def test_an_unexpected_error_has_no_problem_type_and_becomes_a_500() -> None:
    assert problem_for(RuntimeError("boom")) is None


def test_a_broken_state_machine_is_a_500_not_the_callers_conflict() -> None:
    assert problem_for(errors.InvalidTransition("Cancelled → Confirmed")) is None


def test_every_conflict_names_a_cause_that_openapi_yaml_lists() -> None:
    causes = {kind.type_suffix for kind in DOMAIN_PROBLEMS.values() if kind.status == 409}

    assert causes == {
        "not-enough-seats",
        "seat-limit",
        "seats-taken",
        "rejected",
        "expired",
        "too-late-to-cancel",
    }
