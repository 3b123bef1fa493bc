"""Commands: what clients ask for, validated strictly (a string, boolean or fraction where an
integer is expected is invalid, unknown fields are refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from shared.domain.models import CamelModel

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class Command(CamelModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class RegisterMusical(Command):
    title: Title
    seats: int = Field(ge=1, le=100_000)
    price: int = Field(ge=0, le=10_000_000)
    venue: ShortText | None = None
    performance_at: datetime | None = None


class PlaceReservation(Command):
    musical_id: Identifier
    seats: int = Field(ge=1, le=10)
