"""Cancellation fees by calendar days left, counted in the performance's own UTC offset."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import pytest

from shared.domain.fees import cancellation_terms, days_left

SEOUL = timezone(timedelta(hours=9))
NEW_YORK = timezone(timedelta(hours=-5))
SHOW = datetime(2027, 5, 20, 19, 0, tzinfo=SEOUL)
# 19:00 UTC on the same date; the last second of each local day is on the next day in UTC.
SHOW_IN_NEW_YORK = datetime(2027, 5, 20, 14, 0, tzinfo=NEW_YORK)
SHOWS = [pytest.param(SHOW, id="Seoul"), pytest.param(SHOW_IN_NEW_YORK, id="New York")]


def local_day(show: datetime, days_before: int) -> tuple[datetime, datetime]:
    """The first and the last second of the day `days_before` the show's, in its offset, as the
    clock gives them: in UTC (one of the two is on another date there)."""
    day = show.date() - timedelta(days=days_before)
    first, last = (datetime.combine(day, at, show.tzinfo) for at in (time(0), time(23, 59, 59)))
    assert {first.astimezone(UTC).date(), last.astimezone(UTC).date()} != {day}
    return first.astimezone(UTC), last.astimezone(UTC)


@pytest.mark.parametrize("show", SHOWS)
@pytest.mark.parametrize(
    ("days", "percent"),
    [(30, 0), (10, 0), (9, 10), (7, 10), (6, 20), (3, 20), (2, 30), (1, 30)],
)
def test_the_fee_follows_the_schedule_at_every_boundary(
    show: datetime, days: int, percent: int
) -> None:
    for now in local_day(show, days):
        terms = cancellation_terms(100_000, show, now, confirmed=True)
        assert terms is not None
        assert terms.fee_percent == percent
        assert terms.cancellation_fee == 1_000 * percent
        assert terms.refund_amount == 100_000 - 1_000 * percent


@pytest.mark.parametrize("show", SHOWS)
def test_on_the_day_of_the_performance_and_after_it_is_too_late(show: datetime) -> None:
    for now in (*local_day(show, 0), show, show + timedelta(days=3)):
        assert cancellation_terms(100_000, show, now, confirmed=True) is None
        assert cancellation_terms(100_000, show, now, confirmed=False) is None


def test_days_are_counted_in_the_performances_offset_not_in_utc() -> None:
    # 23:30 UTC on 18 May is 08:30 on 19 May in Seoul: one day left, 30 %.
    now = datetime(2027, 5, 18, 23, 30, tzinfo=UTC)
    assert days_left(SHOW, now) == 1
    assert cancellation_terms(10_000, SHOW, now, confirmed=True).fee_percent == 30
    # The same instant for a New York performance on 20 May (18:30 on 18 May there): 2 days.
    assert days_left(SHOW_IN_NEW_YORK, now) == 2


def test_the_fee_is_rounded_down_and_the_refund_is_the_rest() -> None:
    terms = cancellation_terms(99_999, SHOW, SHOW - timedelta(days=8), confirmed=True)
    assert (terms.cancellation_fee, terms.refund_amount) == (9_999, 90_000)


def test_a_reservation_not_yet_confirmed_pays_no_fee_but_is_still_too_late_on_the_day() -> None:
    terms = cancellation_terms(50_000, SHOW, SHOW - timedelta(days=2), confirmed=False)
    assert (terms.fee_percent, terms.cancellation_fee, terms.refund_amount) == (0, 0, 50_000)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="offset"):
        days_left(SHOW.replace(tzinfo=None), SHOW)
