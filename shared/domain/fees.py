"""Cancellation fees of seated reservations, by the calendar days left before the performance.

Days are counted in the performance's own UTC offset: a performance at 19:00+09:00 on 20 May
has 1 day left at any moment of 19 May in Seoul, whatever the time in UTC. On the day of the
performance, or after it, a reservation can no longer be cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# (least days left, fee in percent), checked from the top: 10+ days free, then 10, 20, 30 %.
FEE_SCHEDULE: tuple[tuple[int, int], ...] = ((10, 0), (7, 10), (3, 20), (1, 30))


@dataclass(frozen=True)
class CancellationTerms:
    """What cancelling costs: the fee kept and the refund asked of the gateway."""

    fee_percent: int
    cancellation_fee: int
    refund_amount: int


def days_left(starts_at: datetime, now: datetime) -> int:
    """Calendar days from `now` to the performance, in the performance's own UTC offset."""
    if starts_at.tzinfo is None or now.tzinfo is None:
        raise ValueError("both times must carry a UTC offset")
    return (starts_at.date() - now.astimezone(starts_at.tzinfo).date()).days


def cancellation_terms(
    amount: int, starts_at: datetime, now: datetime, *, confirmed: bool
) -> CancellationTerms | None:
    """The fee and refund of cancelling now, or None when it is too late to cancel.

    Only a reservation that was `Confirmed` at the cancel pays a fee; one whose payment was
    not yet approved is refunded in full if a charge lands later. Too late applies to all.
    """
    left = days_left(starts_at, now)
    if left < 1:
        return None
    percent = next(fee for least, fee in FEE_SCHEDULE if left >= least) if confirmed else 0
    fee = amount * percent // 100
    return CancellationTerms(fee_percent=percent, cancellation_fee=fee, refund_amount=amount - fee)
