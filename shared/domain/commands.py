"""Commands: what clients ask for, validated strictly (a string, boolean or fraction where an
integer is expected is invalid, unknown fields are refused). `null` for an optional field
means "not given"."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints

from shared.domain.models import CamelModel

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=100)]


def _whole_number(value: object) -> object:
    """JSON has one number type: `2.0` is the integer 2 (as JSON Schema says), `2.5` is not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]


class Command(CamelModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class RegisterMusical(Command):
    title: Title
    seats: WholeNumber = Field(ge=1, le=100_000)
    price: WholeNumber = Field(ge=0, le=10_000_000)
    venue: ShortText | None = None
    performance_at: datetime | None = None
    max_seats_per_customer: WholeNumber | None = Field(None, ge=1, le=100)


class PlaceReservation(Command):
    musical_id: Identifier
    seats: WholeNumber = Field(ge=1, le=10)
