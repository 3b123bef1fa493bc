"""Identifiers. A reservation id embeds its musical's id, so a reservation resolves to its
partition (the musical's) without a cross-partition query.

A reservation id's suffix is time-ordered (milliseconds, then 64 random bits): a musical's new
reservations, their events and everything keyed by them land beside each other in the store's
indexes instead of on a random page each (the embedded store writes fewer pages per commit,
and stays as fast as its tables grow). Ids issued before have a 16-digit random suffix; they
still resolve."""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid

_MUSICAL_ID = re.compile(r"^[0-9a-f]{32}$")
_RESERVATION_ID = re.compile(r"^(?P<musical>[0-9a-f]{32})-(?P<suffix>[0-9a-f]{28}|[0-9a-f]{16})$")


def new_musical_id() -> str:
    return uuid.uuid4().hex


def new_reservation_id(musical_id: str) -> str:
    """61 characters: within the 64 a payment gateway takes as an order id."""
    return f"{musical_id}-{time.time_ns() // 1_000_000:012x}{os.urandom(8).hex()}"


def is_musical_id(value: str) -> bool:
    return _MUSICAL_ID.fullmatch(value) is not None


def musical_id_of(reservation_id: str) -> str | None:
    """The musical (partition) a reservation id belongs to, or None if it is not one of ours."""
    match = _RESERVATION_ID.fullmatch(reservation_id)
    return match["musical"] if match else None


def idempotency_record_id(key: str) -> str:
    """Keys are the client's free text; the stored id is a hash (Cosmos ids forbid `/`, `#`…)."""
    return hashlib.sha256(key.encode()).hexdigest()
