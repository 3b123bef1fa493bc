"""Who is asking."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """The token's subject (the customer id) and whether they manage shows."""

    customer_id: str
    is_admin: bool = False
