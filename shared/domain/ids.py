"""Identifiers. A reservation id embeds its musical's id, so a reservation resolves to its
partition (the musical's) without a cross-partition query."""

from __future__ import annotations

import hashlib
import re
import uuid

_MUSICAL_ID = re.compile(r"^[0-9a-f]{32}$")
_RESERVATION_ID = re.compile(r"^(?P<musical>[0-9a-f]{32})-(?P<suffix>[0-9a-f]{16})$")


def new_musical_id() -> str:
    return uuid.uuid4().hex


def new_reservation_id(musical_id: str) -> str:
    return f"{musical_id}-{uuid.uuid4().hex[:16]}"


def is_musical_id(value: str) -> bool:
    return _MUSICAL_ID.fullmatch(value) is not None


def musical_id_of(reservation_id: str) -> str | None:
    """The musical (partition) a reservation id belongs to, or None if it is not one of ours."""
    match = _RESERVATION_ID.fullmatch(reservation_id)
    return match["musical"] if match else None


def idempotency_record_id(key: str) -> str:
    """Keys are the client's free text; the stored id is a hash (Cosmos ids forbid `/`, `#`…)."""
    return hashlib.sha256(key.encode()).hexdigest()
