"""Validation of the seated-musical commands (openapi.yaml), field by field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from shared.domain.seating_commands import (
    RegisterSeatedMusical,
    ReserveBestAvailable,
    ReserveSeats,
)


def musical(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Les Misérables",
        "venue": "Charlotte Theater",
        "grades": {"VIP": 170_000, "R": 140_000},
        "sections": [
            {"id": "A", "grade": "VIP", "rows": 10, "seatsPerRow": 20},
            {"id": "B", "grade": "R", "rows": 20, "seatsPerRow": 30},
        ],
        "performances": ["2027-05-20T19:00:00+09:00", "2027-05-21T14:00:00+09:00"],
        "maxSeatsPerCustomer": 4,
    }
    body.update(changes)
    return body


def register(body: dict[str, Any]) -> RegisterSeatedMusical:
    return RegisterSeatedMusical.model_validate_json(json.dumps(body))


def test_a_valid_seated_musical_keeps_its_offsets_and_its_map() -> None:
    command = register(musical())
    assert command.performances[0].utcoffset().total_seconds() == 9 * 3600
    assert command.seat_map.total_seats == 200 + 600
    assert command.max_seats_per_customer == 4


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"performances": []}, "at least 1"),
        ({"performances": ["2027-05-20T19:00:00"]}, "UTC offset"),
        (
            {"performances": ["2027-05-20T19:00:00+09:00", "2027-05-20T10:00:00Z"]},
            "distinct instants",
        ),
        ({"performances": [f"2027-01-01T00:{m:02d}:00Z" for m in range(60)] * 4}, "at most 200"),
        ({"grades": {"VIP": "170000"}}, "valid integer"),
        ({"grades": {"VIP": 1.5, "R": 1}}, "integer"),
        ({"sections": [{"id": "A", "grade": "Balcony", "rows": 1, "seatsPerRow": 1}]}, "grade"),
        ({"sections": [{"id": "A", "grade": "R", "rows": 1, "seatsPerRow": 1, "x": 1}]}, "Extra"),
        ({"maxSeatsPerCustomer": 0}, "greater than or equal to 1"),
        ({"maxSeatsPerCustomer": 101}, "less than or equal to 100"),
        ({"title": ""}, "at least 1 character"),
        ({"seats": 10}, "Extra"),
    ],
)
def test_an_invalid_seated_musical_is_refused(changes: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        register(musical(**changes))


def test_performances_not_in_the_future_are_named() -> None:
    command = register(musical())
    now = datetime(2027, 5, 20, 12, 0, tzinfo=UTC)  # after the first (10:00 UTC), before the 2nd
    assert [p.isoformat() for p in command.past(now)] == ["2027-05-20T19:00:00+09:00"]


def test_explicit_seats_are_one_to_ten_distinct_ids() -> None:
    command = ReserveSeats.model_validate_json('{"performanceId": "p1", "seatIds": ["A-1-1"]}')
    assert command.seat_ids == ["A-1-1"]
    for seat_ids, why in [
        ([], "at least 1"),
        ([f"A-1-{n}" for n in range(1, 12)], "at most 10"),
        (["A-1-1", "A-1-1"], "distinct"),
        ([1], "valid string"),
    ]:
        with pytest.raises(ValidationError, match=why):
            ReserveSeats.model_validate_json(
                json.dumps({"performanceId": "p1", "seatIds": seat_ids})
            )


def test_best_available_asks_for_a_grade_and_one_to_ten_seats() -> None:
    command = ReserveBestAvailable.model_validate_json(
        '{"performanceId": "p1", "grade": "VIP", "seats": 2}'
    )
    assert (command.grade, command.seats) == ("VIP", 2)
    for seats in (0, 11, "2", True, 2.5):
        with pytest.raises(ValidationError):
            ReserveBestAvailable.model_validate_json(
                json.dumps({"performanceId": "p1", "grade": "VIP", "seats": seats})
            )
