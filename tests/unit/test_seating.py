"""The seat map, seat ids and the choice of the best available seats (openapi.yaml,
docs/seating.md)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.domain.seating import HeldSeats, Seat, SeatMap, Section, best_available


def hall(*sections: tuple[str, str, int, int], grades: dict[str, int] | None = None) -> SeatMap:
    return SeatMap(
        grades=grades or {"VIP": 150_000, "R": 120_000, "S": 90_000},
        sections=[
            Section(id=id, grade=grade, rows=rows, seats_per_row=per_row)
            for id, grade, rows, per_row in sections
        ],
    )


def taken(*seat_ids: str) -> dict[str, HeldSeats]:
    by_section: dict[str, set[Seat]] = {}
    for seat_id in seat_ids:
        seat = Seat.parse(seat_id)
        by_section.setdefault(seat.section, set()).add(seat)
    return {section: HeldSeats.of(section, seats) for section, seats in by_section.items()}


def ids(seats: list[Seat] | None) -> list[str] | None:
    return None if seats is None else [seat.id for seat in seats]


class TestSeatIds:
    def test_a_seat_id_is_section_row_number_counted_from_one(self) -> None:
        assert Seat.parse("A-1-12") == Seat("A", 1, 12)
        assert Seat("VIP2", 100, 100).id == "VIP2-100-100"

    @pytest.mark.parametrize(
        "seat_id",
        ["A-0-1", "A-1-0", "A-01-1", "A--1-1", "A-1", "A-1-1-1", "ABCDEFGHI-1-1", "", "Á-1-1"],
    )
    def test_malformed_seat_ids_are_refused(self, seat_id: str) -> None:
        with pytest.raises(ValueError, match="seat id"):
            Seat.parse(seat_id)

    def test_seats_sort_nearest_the_stage_then_by_number(self) -> None:
        assert sorted([Seat("A", 2, 1), Seat("A", 1, 9), Seat("A", 1, 2)]) == [
            Seat("A", 1, 2),
            Seat("A", 1, 9),
            Seat("A", 2, 1),
        ]


class TestSeatMap:
    def test_a_seat_costs_its_sections_grade(self) -> None:
        seat_map = hall(("A", "VIP", 2, 10), ("B", "S", 5, 20))
        assert seat_map.price_of(Seat("B", 3, 4)) == 90_000
        assert seat_map.total_seats == 120
        assert seat_map.seats_by_grade() == {"VIP": 20, "R": 0, "S": 100}

    def test_the_seats_of_a_reservation_lie_in_one_known_section(self) -> None:
        seat_map = hall(("A", "VIP", 2, 10), ("B", "S", 5, 20))
        section, seats = seat_map.one_section(["A-2-10", "A-1-1"])
        assert section.id == "A"
        assert seats == [Seat("A", 2, 10), Seat("A", 1, 1)]
        for bad, why in [
            (["A-1-1", "B-1-1"], "one section"),
            (["C-1-1"], "no section"),
            (["A-3-1"], "no seat A-3-1"),
            (["A-1-11"], "no seat A-1-11"),
            (["A-1-1", "A-1-1"], "distinct"),
            (["A1"], "seat id"),
        ]:
            with pytest.raises(ValueError, match=why):
                seat_map.one_section(bad)

    @pytest.mark.parametrize(
        ("grades", "sections", "why"),
        [
            ({}, [("A", "R", 1, 1)], "at least 1"),
            ({f"g{i}": 1 for i in range(11)}, [("A", "g1", 1, 1)], "at most 10"),
            ({"R": 1}, [], "at least 1"),
            ({"R": 1}, [("A", "VIP", 1, 1)], "unknown grade"),
            ({"R": 1}, [("A", "R", 1, 1), ("A", "R", 1, 1)], "unique"),
            ({"R": -1}, [("A", "R", 1, 1)], "integer 0..10000000"),
            ({"R": 10_000_001}, [("A", "R", 1, 1)], "integer 0..10000000"),
            ({"R": 1}, [("A", "R", 101, 1)], "less than or equal to 100"),
            ({"R": 1}, [("A", "R", 1, 0)], "greater than or equal to 1"),
            ({"R": 1}, [("A-1", "R", 1, 1)], "pattern"),
            ({"R": 1}, [("ABCDEFGHI", "R", 1, 1)], "pattern"),
            ({"": 1}, [("A", "", 1, 1)], "at least 1 character"),
            ({"R" * 17: 1}, [("A", "R" * 17, 1, 1)], "at most 16 characters"),
            ({"R": 1}, [(f"S{i}", "R", 100, 100) for i in range(11)], "at most 100000 seats"),
        ],
    )
    def test_an_invalid_hall_is_refused_with_its_reason(
        self, grades: dict[str, int], sections: list[tuple[str, str, int, int]], why: str
    ) -> None:
        with pytest.raises(ValidationError, match=why):
            SeatMap.model_validate(
                {
                    "grades": grades,
                    "sections": [
                        {"id": i, "grade": g, "rows": r, "seatsPerRow": n}
                        for i, g, r, n in sections
                    ],
                }
            )

    def test_fifty_sections_of_two_thousand_seats_make_the_largest_hall(self) -> None:
        seat_map = hall(*[(f"S{i}", "R", 20, 100) for i in range(50)])
        assert seat_map.total_seats == 100_000


class TestBestAvailable:
    def test_adjacent_seats_in_the_row_nearest_the_stage_lowest_numbers_first(self) -> None:
        seat_map = hall(("A", "R", 3, 6))
        assert ids(best_available(seat_map, "R", 2, {})) == ["A-1-1", "A-1-2"]
        assert ids(best_available(seat_map, "R", 2, taken("A-1-2"))) == ["A-1-3", "A-1-4"]

    def test_a_nearer_row_in_a_later_section_beats_a_farther_row_in_an_earlier_one(self) -> None:
        seat_map = hall(("A", "R", 3, 4), ("B", "R", 3, 4))
        full_front = taken("A-1-1", "A-1-2", "A-1-3", "A-1-4")
        assert ids(best_available(seat_map, "R", 2, full_front)) == ["B-1-1", "B-1-2"]

    def test_ties_between_sections_go_to_the_section_listed_first(self) -> None:
        seat_map = hall(("B", "R", 3, 4), ("A", "R", 3, 4))
        assert ids(best_available(seat_map, "R", 3, {})) == ["B-1-1", "B-1-2", "B-1-3"]

    def test_only_sections_of_the_asked_grade_are_considered(self) -> None:
        seat_map = hall(("A", "VIP", 1, 4), ("B", "S", 2, 4))
        assert ids(best_available(seat_map, "S", 2, {})) == ["B-1-1", "B-1-2"]
        with pytest.raises(KeyError):
            best_available(seat_map, "Balcony", 1, {})

    def test_without_adjacent_seats_the_nearest_free_seats_of_one_section(self) -> None:
        seat_map = hall(("A", "R", 2, 3))
        scattered = taken("A-1-2", "A-2-2")
        assert ids(best_available(seat_map, "R", 3, scattered)) == ["A-1-1", "A-1-3", "A-2-1"]

    def test_the_fallback_prefers_the_section_whose_free_seats_are_nearer(self) -> None:
        seat_map = hall(("A", "R", 3, 2), ("B", "R", 3, 2))
        # No row anywhere has 2 adjacent free seats; A's free seats are rows 2 and 3, B's 1 and 3.
        holds = taken("A-1-1", "A-1-2", "A-2-1", "A-3-1", "B-1-2", "B-2-1", "B-2-2", "B-3-1")
        assert ids(best_available(seat_map, "R", 2, holds)) == ["B-1-1", "B-3-2"]

    def test_seats_never_span_sections_and_none_when_no_section_has_enough(self) -> None:
        seat_map = hall(("A", "R", 1, 2), ("B", "R", 1, 2))
        assert best_available(seat_map, "R", 3, {}) is None
        assert best_available(seat_map, "R", 2, taken("A-1-1", "B-1-2")) is None

    def test_a_held_seat_is_never_chosen(self) -> None:
        seat_map = hall(("A", "R", 4, 5), ("B", "R", 4, 5))
        holds: set[str] = set()
        for _ in range(8):
            chosen = ids(best_available(seat_map, "R", 5, taken(*holds)))
            assert chosen is not None
            assert holds.isdisjoint(chosen)
            holds.update(chosen)
        assert len(holds) == 40
        assert best_available(seat_map, "R", 1, taken(*holds)) is None


class TestHeldSeats:
    def test_holds_the_seats_it_was_given_and_no_other(self) -> None:
        held = HeldSeats.of("A", [Seat("A", 2, 3), Seat("A", 1, 100)])
        assert Seat("A", 2, 3) in held
        assert Seat("A", 1, 100) in held
        assert Seat("A", 2, 4) not in held
        assert Seat("B", 2, 3) not in held
        assert Seat("A", 7, 1) not in held  # a row beyond the last held one
        assert len(held) == 2
        assert list(held) == [Seat("A", 1, 100), Seat("A", 2, 3)]  # nearest the stage first

    def test_adding_gives_the_union_and_leaves_the_original_as_it_was(self) -> None:
        first = HeldSeats.of("A", [Seat("A", 1, 1)])
        more = first.adding([Seat("A", 3, 2), Seat("A", 1, 1)])
        assert set(first) == {Seat("A", 1, 1)}
        assert set(more) == {Seat("A", 1, 1), Seat("A", 3, 2)}

    def test_a_seat_of_another_section_is_refused(self) -> None:
        with pytest.raises(ValueError, match="not in section A"):
            HeldSeats.of("A", [Seat("B", 1, 1)])


def _best_by_the_rule(
    seat_map: SeatMap, grade: str, count: int, held: set[Seat]
) -> list[Seat] | None:
    """The rule of `best_available`, written the plain way, seat by seat."""
    sections = seat_map.sections_of(grade)
    for row in range(1, max(section.rows for section in sections) + 1):
        for section in sections:
            if row > section.rows:
                continue
            for first in range(1, section.seats_per_row - count + 2):
                run = [Seat(section.id, row, n) for n in range(first, first + count)]
                if not held.intersection(run):
                    return run
    nearest: list[Seat] | None = None
    for section in sections:
        free = [seat for seat in section.seats() if seat not in held][:count]
        if len(free) == count and (
            nearest is None or [s.row for s in free] < [s.row for s in nearest]
        ):
            nearest = free
    return nearest


class TestBestAvailableFollowsTheRule:
    @given(
        shape=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 8)), min_size=1, max_size=3),
        count=st.integers(1, 5),
        data=st.data(),
    )
    def test_on_any_hall_and_any_held_seats(
        self, shape: list[tuple[int, int]], count: int, data: st.DataObject
    ) -> None:
        seat_map = hall(*[(f"S{i}", "R", rows, per_row) for i, (rows, per_row) in enumerate(shape)])
        every = [seat for section in seat_map.sections for seat in section.seats()]
        held = set(data.draw(st.lists(st.sampled_from(every), unique=True)))
        chosen = best_available(seat_map, "R", count, taken(*(seat.id for seat in held)))
        assert chosen == _best_by_the_rule(seat_map, "R", count, held)
