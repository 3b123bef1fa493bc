"""The delay before a deferred payment is tried again."""

from __future__ import annotations

import random

import pytest

from shared.retry_policy import payment_retry_delay
from shared.settings import Settings

DEFAULTS = Settings()


def highest(failed_attempts: int, base: float = 1.0, cap: float = 20.0) -> float:
    """The delay drawn when the jitter picks the top of its window."""
    return payment_retry_delay(
        failed_attempts, base_seconds=base, max_seconds=cap, uniform=lambda low, high: high
    )


def test_the_window_doubles_with_each_failure_from_the_base() -> None:
    assert [highest(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_the_window_stops_growing_at_the_cap() -> None:
    assert highest(6) == 20.0
    assert highest(10_000) == 20.0


def test_the_jitter_spans_the_whole_window_from_zero() -> None:
    windows: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        windows.append((low, high))
        return low

    delay = payment_retry_delay(3, base_seconds=0.5, max_seconds=20, uniform=uniform)

    assert delay == 0.0
    assert windows == [(0.0, 2.0)]


def test_random_delays_stay_within_zero_and_the_cap() -> None:
    rng = random.Random(7)
    delays = [
        payment_retry_delay(n, base_seconds=1, max_seconds=20, uniform=rng.uniform)
        for n in range(1, 40)
        for _ in range(50)
    ]

    assert min(delays) >= 0
    assert max(delays) <= 20
    assert len(set(delays)) == len(delays)


def test_attempt_counts_start_at_one() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        payment_retry_delay(0, base_seconds=1, max_seconds=20)


def test_with_default_settings_recovery_fits_in_sixty_seconds() -> None:
    """The budget of the docstring, computed from the settings themselves."""
    healthy_call = 1.0
    last_failure_detected = DEFAULTS.gateway_timeout_seconds
    cap = highest(10_000, DEFAULTS.payment_retry_base_seconds, DEFAULTS.payment_retry_max_seconds)

    worst_case = (
        last_failure_detected
        + DEFAULTS.breaker_open_seconds
        + cap
        + healthy_call
        + DEFAULTS.breaker_cache_seconds
        + cap
        + healthy_call
    )

    assert worst_case < 60
