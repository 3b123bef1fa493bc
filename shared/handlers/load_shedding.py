"""Refusing new orders while payments are down, when the operators ask for it.

By default (RESERVATIONS_WHEN_PAYMENT_DOWN=accept) reservations are taken 24/7 and their
payments deferred. With `reject`, an open circuit breaker makes POST /reservations answer 503
with Retry-After, so clients come back when payments are likely to work again.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Literal

from shared.breaker import BreakerState
from shared.domain.errors import PaymentsUnavailable


async def admit_new_order(
    when_payment_down: Literal["accept", "reject"], breaker_state: Callable[[], BreakerState]
) -> None:
    """Raise PaymentsUnavailable (503) when the operators asked to refuse and the breaker is
    open. The breaker's state is a blocking store read: it runs in a worker thread, and only in
    `reject` mode, so the default costs the event loop nothing."""
    if when_payment_down == "reject":
        await asyncio.to_thread(_refuse_if_breaker_open, breaker_state)


def _refuse_if_breaker_open(breaker_state: Callable[[], BreakerState]) -> None:
    state = breaker_state()
    if state.state == "open":
        raise PaymentsUnavailable(
            "payments are unavailable; reservations are paused, please retry later",
            retry_after_seconds=max(1, math.ceil(state.retry_after_seconds or 1)),
        )
