"""The seat map of a seated musical, and the choice of seats in one performance.

A hall has sections; a section has a grade (which sets its price), rows counted from 1 nearest
the stage, and seats numbered from 1 in each row. A seat's id is `{section}-{row}-{number}`.

Each performance sells every seat of the hall once. The seats of one reservation lie in one
section, so a store can keep a (performance, section) pair in one partition and hold a
reservation's seats, the reservation and its event in one transactional batch.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Annotated, Self

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from shared.domain.models import CamelModel

MAX_GRADES = 10
MAX_SECTIONS = 50
MAX_HALL_SEATS = 100_000
MAX_ROWS = 100
MAX_SEATS_PER_ROW = 100
MAX_PRICE = 10_000_000

SectionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,8}$")]
GradeName = Annotated[str, StringConstraints(min_length=1, max_length=16)]

_SEAT_ID = re.compile(r"^([A-Za-z0-9]{1,8})-([1-9][0-9]{0,2})-([1-9][0-9]{0,2})$")


@dataclass(frozen=True, order=True)
class Seat:
    """One seat of the hall. Ordered by section, then nearest the stage, then lowest number."""

    section: str
    row: int
    number: int

    @property
    def id(self) -> str:
        return f"{self.section}-{self.row}-{self.number}"

    @classmethod
    def parse(cls, seat_id: str) -> Self:
        """The seat named by `seat_id`; raises ValueError when it is not `{section}-{row}-{n}`."""
        match = _SEAT_ID.match(seat_id)
        if match is None:
            raise ValueError(f"{seat_id!r} is not a seat id of the form SECTION-ROW-NUMBER")
        section, row, number = match.groups()
        return cls(section, int(row), int(number))


class Section(CamelModel):
    """A block of seats with one grade: `rows` rows of `seats_per_row` seats."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    id: SectionId
    grade: GradeName
    rows: int = Field(ge=1, le=MAX_ROWS)
    seats_per_row: int = Field(ge=1, le=MAX_SEATS_PER_ROW)

    @property
    def total_seats(self) -> int:
        return self.rows * self.seats_per_row

    def contains(self, seat: Seat) -> bool:
        return (
            seat.section == self.id
            and 1 <= seat.row <= self.rows
            and 1 <= seat.number <= self.seats_per_row
        )

    def seats(self) -> Iterable[Seat]:
        """Every seat, nearest the stage first, then by number."""
        for row in range(1, self.rows + 1):
            for number in range(1, self.seats_per_row + 1):
                yield Seat(self.id, row, number)


class SeatMap(CamelModel):
    """The grades (name → price) and sections of a hall, validated as a whole."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    grades: dict[GradeName, int] = Field(min_length=1, max_length=MAX_GRADES)
    sections: list[Section] = Field(min_length=1, max_length=MAX_SECTIONS)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for grade, price in self.grades.items():
            if type(price) is not int or not 0 <= price <= MAX_PRICE:
                raise ValueError(f"the price of grade {grade!r} must be an integer 0..{MAX_PRICE}")
        ids = [section.id for section in self.sections]
        if len(set(ids)) != len(ids):
            raise ValueError("section ids must be unique")
        for section in self.sections:
            if section.grade not in self.grades:
                raise ValueError(f"section {section.id!r} names an unknown grade {section.grade!r}")
        if self.total_seats > MAX_HALL_SEATS:
            raise ValueError(f"a hall has at most {MAX_HALL_SEATS} seats")
        return self

    @property
    def total_seats(self) -> int:
        return sum(section.total_seats for section in self.sections)

    @cached_property
    def _by_id(self) -> dict[str, Section]:
        return {section.id: section for section in self.sections}

    def section(self, section_id: str) -> Section | None:
        return self._by_id.get(section_id)

    def sections_of(self, grade: str) -> list[Section]:
        """The sections of `grade`, in the order the map lists them."""
        return [section for section in self.sections if section.grade == grade]

    def price_of(self, seat: Seat) -> int:
        return self.grades[self._by_id[seat.section].grade]

    def seats_by_grade(self) -> dict[str, int]:
        totals = dict.fromkeys(self.grades, 0)
        for section in self.sections:
            totals[section.grade] += section.total_seats
        return totals

    def one_section(self, seat_ids: Sequence[str]) -> tuple[Section, list[Seat]]:
        """The section holding all of `seat_ids`, and the seats in the order given.

        Raises ValueError for a malformed or unknown seat, a repeated one, or seats in two
        sections: a reservation's seats lie in one section.
        """
        seats = [Seat.parse(seat_id) for seat_id in seat_ids]
        if len(set(seats)) != len(seats):
            raise ValueError("seat ids must be distinct")
        sections = {seat.section for seat in seats}
        if len(sections) != 1:
            raise ValueError("the seats of one reservation must lie in one section")
        section = self._by_id.get(sections.pop())
        if section is None:
            raise ValueError(f"no section {seats[0].section!r} in this hall")
        for seat in seats:
            if not section.contains(seat):
                raise ValueError(f"no seat {seat.id} in section {section.id}")
        return section, seats


def best_available(
    seat_map: SeatMap, grade: str, count: int, taken: Mapping[str, frozenset[Seat]]
) -> list[Seat] | None:
    """The seats of `grade` that a "best available" request for `count` seats gets, or None.

    `taken` holds, per section id, the seats that are held. The rule: the row nearest the
    stage, in any section of the grade, that has `count` free seats next to each other
    (consecutive numbers), the lowest numbers first; otherwise, in one section, the `count` free
    seats nearest the stage. Ties go to the section listed first, then to the lowest numbers.
    Raises KeyError for a grade the map does not have.
    """
    if grade not in seat_map.grades:
        raise KeyError(grade)
    sections = seat_map.sections_of(grade)
    adjacent = _adjacent_in_nearest_row(sections, count, taken)
    if adjacent is not None:
        return adjacent
    return _nearest_in_one_section(sections, count, taken)


def _adjacent_in_nearest_row(
    sections: Sequence[Section], count: int, taken: Mapping[str, frozenset[Seat]]
) -> list[Seat] | None:
    held_by_row = {
        section.id: _numbers_by_row(taken.get(section.id, frozenset())) for section in sections
    }
    deepest = max(section.rows for section in sections)
    for row in range(1, deepest + 1):
        for section in sections:
            if row > section.rows or count > section.seats_per_row:
                continue
            held = held_by_row[section.id].get(row, frozenset())
            if section.seats_per_row - len(held) < count:
                continue  # not that many free seats in this row at all
            run = 0
            for number in range(1, section.seats_per_row + 1):
                run = 0 if number in held else run + 1
                if run == count:
                    first = number - count + 1
                    return [Seat(section.id, row, n) for n in range(first, number + 1)]
    return None


@functools.lru_cache(maxsize=256)
def _numbers_by_row(seats: frozenset[Seat]) -> Mapping[int, frozenset[int]]:
    """The held numbers of each row. Cached: a section that did not change since the last
    request hands over the very same set (shared.handlers.seat_book)."""
    by_row: dict[int, set[int]] = {}
    for seat in seats:
        by_row.setdefault(seat.row, set()).add(seat.number)
    return MappingProxyType({row: frozenset(numbers) for row, numbers in by_row.items()})


def _nearest_in_one_section(
    sections: Sequence[Section], count: int, taken: Mapping[str, frozenset[Seat]]
) -> list[Seat] | None:
    best: list[Seat] | None = None
    best_rows: list[int] = []
    for section in sections:
        held = taken.get(section.id, frozenset())
        if section.total_seats - len(held) < count:
            continue
        chosen: list[Seat] = []
        for seat in section.seats():
            if seat not in held:
                chosen.append(seat)
                if len(chosen) == count:
                    break
        rows = [seat.row for seat in chosen]
        if best is None or rows < best_rows:  # strictly nearer: an earlier section wins ties
            best, best_rows = chosen, rows
    return best
