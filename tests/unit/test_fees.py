"""Cancellation fees by calendar days left, counted in the performance's own UTC offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.domain.fees import cancellation_terms, days_left

SEOUL = timezone(timedelta(hours=9))
NEW_YORK = timezone(timedelta(hours=-5))
SHOW = datetime(2027, 5, 20, 19, 0, tzinfo=SEOUL)


@pytest.mark.parametrize(
    ("days", "percent"),
    [(30, 0), (10, 0), (9, 10), (7, 10), (6, 20), (3, 20), (2, 30), (1, 30)],
)
def test_the_fee_follows_the_schedule_at_every_boundary(days: int, percent: int) -> None:
    day = SHOW.date() - timedelta(days=days)
    first_second = datetime(day.year, day.month, day.day, 0, 0, 0, tzinfo=SEOUL)
    last_second = datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=SEOUL)
    for now in (first_second, last_second):
        terms = cancellation_terms(100_000, SHOW, now, confirmed=True)
        assert terms is not None
        assert terms.fee_percent == percent
        assert terms.cancellation_fee == 1_000 * percent
        assert terms.refund_amount == 100_000 - 1_000 * percent


def test_on_the_day_of_the_performance_and_after_it_is_too_late() -> None:
    first_minute = datetime(2027, 5, 20, 0, 0, tzinfo=SEOUL)
    for now in (first_minute, SHOW, SHOW + timedelta(days=3)):
        assert cancellation_terms(100_000, SHOW, now, confirmed=True) is None
        assert cancellation_terms(100_000, SHOW, now, confirmed=False) is None


def test_days_are_counted_in_the_performances_offset_not_in_utc() -> None:
    # 23:30 UTC on 18 May is 08:30 on 19 May in Seoul: one day left, 30 %.
    now = datetime(2027, 5, 18, 23, 30, tzinfo=UTC)
    assert days_left(SHOW, now) == 1
    assert cancellation_terms(10_000, SHOW, now, confirmed=True).fee_percent == 30
    # The same instant for a New York performance on 20 May (18:30 on 18 May there): 2 days.
    show_in_new_york = datetime(2027, 5, 20, 19, 0, tzinfo=NEW_YORK)
    assert days_left(show_in_new_york, now) == 2


def test_the_fee_is_rounded_down_and_the_refund_is_the_rest() -> None:
    terms = cancellation_terms(99_999, SHOW, SHOW - timedelta(days=8), confirmed=True)
    assert (terms.cancellation_fee, terms.refund_amount) == (9_999, 90_000)


def test_a_reservation_not_yet_confirmed_pays_no_fee_but_is_still_too_late_on_the_day() -> None:
    terms = cancellation_terms(50_000, SHOW, SHOW - timedelta(days=2), confirmed=False)
    assert (terms.fee_percent, terms.cancellation_fee, terms.refund_amount) == (0, 0, 50_000)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="offset"):
        days_left(SHOW.replace(tzinfo=None), SHOW)
