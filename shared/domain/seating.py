"""The seat map of a seated musical, and the choice of seats in one performance.

A hall has sections; a section has a grade (which sets its price), rows counted from 1 nearest
the stage, and seats numbered from 1 in each row. A seat's id is `{section}-{row}-{number}`.

Each performance sells every seat of the hall once. The seats of one reservation lie in one
section, so a store can keep a (performance, section) pair in one partition and hold a
reservation's seats, the reservation and its event in one transactional batch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
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


@dataclass(frozen=True)
class HeldSeats:
    """The held seats of one section as a bit mask per row: bit `n - 1` of `rows[r - 1]` is
    seat `n` of row `r`. Choosing seats then costs a few integer operations per row, where a set
    of seats cost a pass over each of up to 10,000 seats on every request."""

    section: str
    rows: tuple[int, ...] = ()

    @classmethod
    def of(cls, section: str, seats: Iterable[Seat]) -> HeldSeats:
        return cls(section).adding(seats)

    def adding(self, seats: Iterable[Seat]) -> HeldSeats:
        """These seats and `seats` (which must lie in this section)."""
        rows = list(self.rows)
        for seat in seats:
            if seat.section != self.section:
                raise ValueError(f"seat {seat.id} is not in section {self.section}")
            rows.extend([0] * (seat.row - len(rows)))
            rows[seat.row - 1] |= 1 << (seat.number - 1)
        return HeldSeats(self.section, tuple(rows))

    def in_row(self, row: int) -> int:
        """The mask of the held numbers of `row`."""
        return self.rows[row - 1] if row <= len(self.rows) else 0

    def __contains__(self, seat: object) -> bool:
        return (
            isinstance(seat, Seat)
            and seat.section == self.section
            and bool(self.in_row(seat.row) >> (seat.number - 1) & 1)
        )

    def __len__(self) -> int:
        return sum(mask.bit_count() for mask in self.rows)

    def __iter__(self) -> Iterator[Seat]:
        return _seats(self.section, self.rows)


def _seats(section: str, rows: Iterable[int]) -> Iterator[Seat]:
    """The seats whose bits are set in the masks of `rows`, nearest the stage first, then by
    number."""
    for row, mask in enumerate(rows, start=1):
        left = mask
        while left:
            lowest = left & -left
            yield Seat(section, row, lowest.bit_length())
            left ^= lowest


def best_available(
    seat_map: SeatMap,
    grade: str,
    count: int,
    taken: Mapping[str, HeldSeats],
    within: str | None = None,
) -> list[Seat] | None:
    """The seats of `grade` that a "best available" request for `count` seats gets, or None.

    `taken` holds, per section id, the seats that are held. The rule: the row nearest the
    stage, in any section of the grade, that has `count` free seats next to each other
    (consecutive numbers), the lowest numbers first; otherwise, in one section, the `count` free
    seats nearest the stage. Ties go to the section listed first, then to the lowest numbers.
    With `within`, only that section of the grade is looked at. Raises KeyError for a grade the
    map does not have.
    """
    if grade not in seat_map.grades:
        raise KeyError(grade)
    sections = [s for s in seat_map.sections_of(grade) if within is None or s.id == within]
    free = {
        section.id: _free_rows(section, taken.get(section.id, HeldSeats(section.id)))
        for section in sections
    }
    adjacent = _adjacent_in_nearest_row(sections, count, free)
    if adjacent is not None:
        return adjacent
    return _nearest_in_one_section(sections, count, free)


def _free_rows(section: Section, held: HeldSeats) -> list[int]:
    """The mask of the free numbers of each row of `section` (index `row - 1`)."""
    every = (1 << section.seats_per_row) - 1
    return [every & ~held.in_row(row) for row in range(1, section.rows + 1)]


def _adjacent_in_nearest_row(
    sections: Sequence[Section], count: int, free: Mapping[str, list[int]]
) -> list[Seat] | None:
    deepest = max(section.rows for section in sections)
    for row in range(1, deepest + 1):
        for section in sections:
            if row > section.rows:
                continue
            # A bit stays set in `runs` where `count` free seats start: each step keeps the bits
            # whose next seat is free too.
            runs = free[section.id][row - 1]
            for _ in range(count - 1):
                runs &= runs >> 1
            if runs:
                first = (runs & -runs).bit_length()
                return [Seat(section.id, row, n) for n in range(first, first + count)]
    return None


def _nearest_in_one_section(
    sections: Sequence[Section], count: int, free: Mapping[str, list[int]]
) -> list[Seat] | None:
    best: list[Seat] | None = None
    best_rows: list[int] = []
    for section in sections:
        chosen = list(islice(_seats(section.id, free[section.id]), count))
        if len(chosen) < count:
            continue
        rows = [seat.row for seat in chosen]
        if best is None or rows < best_rows:  # strictly nearer: an earlier section wins ties
            best, best_rows = chosen, rows
    return best
