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


# --------------------------------------------------------------------------- seated musicals
# A performance id is 24 hex digits; its section partition is `{performance}-{section}`, and a
# seated reservation's id is that partition, a dash and the same time-ordered suffix as above:
# at most 24 + 1 + 8 + 1 + 28 = 62 characters, within the gateway's 64 for an order id. The
# 24 leading hex digits tell it apart from a general-admission id (32 of them before the dash).

_PERFORMANCE_ID = re.compile(r"^[0-9a-f]{24}$")
_SEATED_RESERVATION_ID = re.compile(
    r"^(?P<performance>[0-9a-f]{24})-(?P<section>[A-Za-z0-9]{1,8})-(?P<suffix>[0-9a-f]{28})$"
)


def new_performance_id() -> str:
    return uuid.uuid4().hex[:24]


def is_performance_id(value: str) -> bool:
    return _PERFORMANCE_ID.fullmatch(value) is not None


def section_partition(performance_id: str, section_id: str) -> str:
    """The partition of one section of one performance: its seats, counter and reservations."""
    return f"{performance_id}-{section_id}"


def new_reservation_suffix() -> str:
    """28 hex digits: milliseconds, then 64 random bits (time-ordered, as above)."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(8).hex()}"


def seated_reservation_id(performance_id: str, section_id: str, suffix: str) -> str:
    return f"{section_partition(performance_id, section_id)}-{suffix}"


def seated_partition_of(reservation_id: str) -> tuple[str, str] | None:
    """(performance id, section id) of a seated reservation id, or None if it is not one."""
    match = _SEATED_RESERVATION_ID.fullmatch(reservation_id)
    return (match["performance"], match["section"]) if match else None
