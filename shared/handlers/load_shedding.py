"""Refusing new orders while payments are down, when the operators ask for it.

By default (RESERVATIONS_WHEN_PAYMENT_DOWN=accept) reservations are taken 24/7 and their
payments deferred. With `reject`, an open circuit breaker makes POST /reservations answer 503
with Retry-After, so clients come back when payments are likely to work again.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING

from shared.domain.errors import PaymentsUnavailable

if TYPE_CHECKING:
    from shared.bootstrap import Services


async def admit_new_order(services: Services) -> None:
    """Raise PaymentsUnavailable (503) when the operators asked to refuse and the breaker is
    open. The breaker's state is a blocking store read: it runs in a worker thread, and only in
    `reject` mode, so the default costs the event loop nothing."""
    if services.settings.reservations_when_payment_down == "reject":
        await asyncio.to_thread(_refuse_if_breaker_open, services)


def _refuse_if_breaker_open(services: Services) -> None:
    state = services.breaker.state()
    if state.state == "open":
        retry_after = max(1, math.ceil(state.retry_after_seconds or 1))
        raise PaymentsUnavailable(
            "payments are unavailable; reservations are paused, please retry later",
            headers={"Retry-After": str(retry_after)},
        )
