"""Validation of the seated-musical commands (CONTRACT §6, openapi.yaml), field by field: each
bound is accepted at its limit and refused one past it."""

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


def sections(count: int, **changes: Any) -> list[dict[str, Any]]:
    """`count` sections of grade R, of one seat each unless `changes` say otherwise."""
    return [
        {"id": f"S{n}", "grade": "R", "rows": 1, "seatsPerRow": 1, **changes} for n in range(count)
    ]


def performances(count: int) -> list[str]:
    """`count` distinct date-times, a minute apart."""
    return [f"2027-01-{1 + n // 60:02d}T00:{n % 60:02d}:00Z" for n in range(count)]


def register(body: dict[str, Any]) -> RegisterSeatedMusical:
    return RegisterSeatedMusical.model_validate_json(json.dumps(body))


def test_a_valid_seated_musical_keeps_its_offsets_and_its_map() -> None:
    command = register(musical())
    assert command.performances[0].utcoffset().total_seconds() == 9 * 3600
    assert command.seat_map.total_seats == 200 + 600
    assert command.max_seats_per_customer == 4


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"sections": sections(50)}, id="50 sections"),
        pytest.param({"sections": sections(10, rows=100, seatsPerRow=100)}, id="100000 seats"),
        pytest.param({"sections": sections(1, id="Ab345678")}, id="section id of 8"),
        pytest.param(
            {"grades": {f"G{n}": 0 for n in range(9)} | {"R": 10_000_000}}, id="10 grades"
        ),
        pytest.param({"grades": {"R": 1, "X" * 16: 1}}, id="grade name of 16"),
        pytest.param({"title": "x" * 200, "venue": "x" * 200}, id="title of 200"),
        pytest.param({"performances": performances(200)}, id="200 performances"),
        pytest.param({"maxSeatsPerCustomer": 1}, id="cap of 1"),
        pytest.param({"maxSeatsPerCustomer": 100}, id="cap of 100"),
    ],
)
def test_a_seated_musical_at_the_bounds_of_every_field_is_accepted(changes: dict) -> None:
    register(musical(**{"sections": sections(1), **changes}))


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        pytest.param({"title": ""}, "at least 1 character", id="empty title"),
        pytest.param({"title": "   "}, "at least 1 character", id="blank title"),
        pytest.param({"title": "x" * 201}, "at most 200 characters", id="title of 201"),
        pytest.param({"venue": "x" * 201}, "at most 200 characters", id="venue of 201"),
        pytest.param({"grades": {}}, "at least 1 item", id="no grade"),
        pytest.param(
            {"grades": {f"G{n}": 1 for n in range(10)} | {"R": 1}}, "at most 10", id="11 grades"
        ),
        pytest.param({"grades": {"R": 1, "": 1}}, "at least 1 character", id="empty grade name"),
        pytest.param({"grades": {"R": 1, "X" * 17: 1}}, "at most 16", id="grade name of 17"),
        pytest.param({"grades": {"R": -1}}, r"integer 0\.\.10000000", id="price -1"),
        pytest.param({"grades": {"R": 10_000_001}}, r"integer 0\.\.10000000", id="price 10000001"),
        pytest.param({"grades": {"R": "170000"}}, "valid integer", id="price as a string"),
        pytest.param({"grades": {"R": 1.5}}, "integer", id="price as a fraction"),
        pytest.param({"grades": {"R": True}}, "valid integer", id="price as a boolean"),
        pytest.param({"sections": []}, "at least 1 item", id="no section"),
        pytest.param({"sections": sections(51)}, "at most 50 items", id="51 sections"),
        pytest.param({"sections": sections(1, rows=0)}, "greater than or equal to 1", id="rows 0"),
        pytest.param(
            {"sections": sections(1, rows=101)}, "less than or equal to 100", id="rows 101"
        ),
        pytest.param(
            {"sections": sections(1, seatsPerRow=0)},
            "greater than or equal to 1",
            id="seatsPerRow 0",
        ),
        pytest.param(
            {"sections": sections(1, seatsPerRow=101)},
            "less than or equal to 100",
            id="seatsPerRow 101",
        ),
        pytest.param({"sections": sections(1, rows=True)}, "valid integer", id="rows as a boolean"),
        pytest.param(
            {"sections": sections(1, seatsPerRow=True)},
            "valid integer",
            id="seatsPerRow as a boolean",
        ),
        pytest.param({"sections": sections(1, rows="2")}, "valid integer", id="rows as a string"),
        pytest.param({"sections": sections(1, id="ABCDEFGHI")}, "pattern", id="section id of 9"),
        pytest.param({"sections": sections(1, id="")}, "pattern", id="empty section id"),
        pytest.param({"sections": sections(1, id="A-1")}, "pattern", id="section id with a dash"),
        pytest.param({"sections": sections(1, id="Ä")}, "pattern", id="section id not ASCII"),
        pytest.param({"sections": sections(1) * 2}, "unique", id="section ids repeated"),
        pytest.param(
            {"sections": sections(1, grade="Balcony")}, "unknown grade", id="unknown grade"
        ),
        pytest.param({"sections": sections(1, x=1)}, "Extra", id="unknown section field"),
        pytest.param(
            {
                "sections": [
                    *sections(10, rows=100, seatsPerRow=100),
                    {"id": "Z", "grade": "R", "rows": 1, "seatsPerRow": 1},
                ]
            },
            "at most 100000 seats",
            id="100001 seats",
        ),
        pytest.param({"performances": []}, "at least 1", id="no performance"),
        pytest.param({"performances": performances(201)}, "at most 200", id="201 performances"),
        pytest.param({"performances": ["2027-05-20T19:00:00"]}, "UTC offset", id="no offset"),
        pytest.param(
            {"performances": ["2027-05-20T19:00:00+09:00", "2027-05-20T10:00:00Z"]},
            "distinct instants",
            id="one instant twice",
        ),
        pytest.param({"maxSeatsPerCustomer": 0}, "greater than or equal to 1", id="cap 0"),
        pytest.param({"maxSeatsPerCustomer": 101}, "less than or equal to 100", id="cap 101"),
        pytest.param({"maxSeatsPerCustomer": True}, "valid integer", id="cap as a boolean"),
        pytest.param({"seats": 10}, "Extra", id="a general-admission field"),
    ],
)
def test_an_invalid_seated_musical_is_refused(changes: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        register(musical(**{"grades": {"VIP": 1, "R": 1}, "sections": sections(1), **changes}))


@pytest.mark.parametrize(
    "performance",
    [
        pytest.param("tomorrow", id="words"),
        pytest.param("2027-05-20", id="a date"),
        pytest.param("19:00:00+09:00", id="a time"),
        pytest.param("2027-13-20T19:00:00+09:00", id="month 13"),
        pytest.param(1_800_000_000, id="a number"),
        pytest.param("1800000000", id="a Unix time as a string"),
        pytest.param("2027-05-20_19:00:00+09:00", id="an underscore for the T"),
    ],
)
def test_a_performance_that_is_not_an_iso_8601_date_time_is_refused(performance: Any) -> None:
    with pytest.raises(ValidationError, match=r"performances\.0"):
        register(musical(performances=[performance]))


def test_performances_not_in_the_future_are_named() -> None:
    command = register(musical())
    now = datetime(2027, 5, 20, 12, 0, tzinfo=UTC)  # after the first (10:00 UTC), before the 2nd
    assert [p.isoformat() for p in command.past(now)] == ["2027-05-20T19:00:00+09:00"]


def reserve_seats(**changes: Any) -> ReserveSeats:
    return ReserveSeats.model_validate_json(
        json.dumps({"performanceId": "p1", "seatIds": ["A-1-1"], **changes})
    )


def reserve_best(**changes: Any) -> ReserveBestAvailable:
    return ReserveBestAvailable.model_validate_json(
        json.dumps({"performanceId": "p1", "grade": "VIP", "seats": 2, **changes})
    )


def test_explicit_seats_are_one_to_ten_distinct_ids_of_at_most_32_characters() -> None:
    assert reserve_seats().seat_ids == ["A-1-1"]
    longest = "A-1-" + "1" * 28
    assert reserve_seats(seatIds=[longest]).seat_ids == [longest]
    assert len(reserve_seats(seatIds=[f"A-1-{n}" for n in range(1, 11)]).seat_ids) == 10
    assert reserve_seats(performanceId="p" * 100).performance_id == "p" * 100


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"seatIds": []}, "at least 1"),
        ({"seatIds": [f"A-1-{n}" for n in range(1, 12)]}, "at most 10"),
        ({"seatIds": ["A-1-1", "A-1-1"]}, "distinct"),
        ({"seatIds": [1]}, "valid string"),
        ({"seatIds": [""]}, "at least 1 character"),
        ({"seatIds": ["A-1-" + "1" * 29]}, "at most 32 characters"),
        ({"performanceId": ""}, "at least 1 character"),
        ({"performanceId": "p" * 101}, "at most 100 characters"),
    ],
)
def test_invalid_explicit_seats_are_refused(changes: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        reserve_seats(**changes)


def test_best_available_asks_for_a_grade_of_at_most_16_characters_and_one_to_ten_seats() -> None:
    assert (reserve_best().grade, reserve_best().seats) == ("VIP", 2)
    assert reserve_best(grade="X" * 16, seats=10).grade == "X" * 16
    assert reserve_best(seats=1).seats == 1


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"seats": 0}, "greater than or equal to 1"),
        ({"seats": 11}, "less than or equal to 10"),
        ({"seats": "2"}, "valid integer"),
        ({"seats": True}, "valid integer"),
        ({"seats": 2.5}, "integer"),
        ({"grade": ""}, "at least 1 character"),
        ({"grade": "X" * 17}, "at most 16 characters"),
        ({"performanceId": "p" * 101}, "at most 100 characters"),
    ],
)
def test_an_invalid_best_available_request_is_refused(changes: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        reserve_best(**changes)
