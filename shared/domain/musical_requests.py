"""The body of `POST /musicals`: general admission (`seats`, `price`) or seated (`grades`,
`sections`, `performances`), told apart by their fields."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, RootModel, Tag

from shared.domain.commands import RegisterMusical
from shared.domain.seating_commands import RegisterSeatedMusical

_SEATED_FIELDS = ("grades", "sections", "performances")


def _kind(body: Any) -> str:
    if isinstance(body, dict) and any(name in body for name in _SEATED_FIELDS):
        return "seated"
    return "generalAdmission"


_Body = Annotated[
    Annotated[RegisterMusical, Tag("generalAdmission")]
    | Annotated[RegisterSeatedMusical, Tag("seated")],
    Discriminator(_kind),
]


class MusicalRequest(RootModel[_Body]):
    root: _Body
