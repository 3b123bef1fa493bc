"""Commands of seated musicals: registering one with its seat map and performances, and
reserving seats of a performance, by id or as the best available of a grade.

Validated as strictly as every command (see `shared.domain.commands`). What needs the clock
(performances in the future) is checked by the handler with `RegisterSeatedMusical.past(now)`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Self

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from shared.domain.commands import Command, Identifier, ShortText, Title, WholeNumber
from shared.domain.seating import GradeName, SeatMap, Section

MAX_PERFORMANCES = 200
MAX_SEATS_PER_RESERVATION = 10


# RFC 3339 (openapi.yaml's `date-time`): pydantic alone would also take a Unix time or a date
# and time joined by another character than `T`.
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _date_time(value: object) -> object:
    if isinstance(value, str) and _DATE_TIME.fullmatch(value):
        return datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value
    raise ValueError(
        "a performance is a date-time with its UTC offset, e.g. 2027-05-20T19:00:00+09:00"
    )


def _with_offset(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a performance's date-time must carry its UTC offset")
    return value


PerformanceTime = Annotated[datetime, BeforeValidator(_date_time), AfterValidator(_with_offset)]


class RegisterSeatedMusical(Command):
    title: Title
    venue: ShortText | None = None
    grades: dict[GradeName, WholeNumber]
    sections: list[Section]
    performances: list[PerformanceTime] = Field(min_length=1, max_length=MAX_PERFORMANCES)
    max_seats_per_customer: WholeNumber | None = Field(default=None, ge=1, le=100)

    @model_validator(mode="after")
    def _valid_hall_and_dates(self) -> Self:
        SeatMap(grades=self.grades, sections=self.sections)  # raises what is wrong with the map
        if len(set(self.performances)) != len(self.performances):  # aware datetimes: instants
            raise ValueError("performances must be distinct instants")
        return self

    @property
    def seat_map(self) -> SeatMap:
        return SeatMap(grades=self.grades, sections=self.sections)

    def past(self, now: datetime) -> list[datetime]:
        """The performances that do not lie in the future at `now` (the request is invalid)."""
        return [starts_at for starts_at in self.performances if starts_at <= now]


class ReserveSeats(Command):
    """Exactly these seats of one section, or nothing."""

    performance_id: Identifier
    seat_ids: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(
        min_length=1, max_length=MAX_SEATS_PER_RESERVATION
    )

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        if len(set(self.seat_ids)) != len(self.seat_ids):
            raise ValueError("seat ids must be distinct")
        return self


class ReserveBestAvailable(Command):
    """The best `seats` free seats of `grade`, in one section."""

    performance_id: Identifier
    grade: GradeName
    seats: WholeNumber = Field(ge=1, le=MAX_SEATS_PER_RESERVATION)


SeatedCommand = ReserveSeats | ReserveBestAvailable
