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


def refuse_when_payments_down(services: Services) -> None:
    if services.settings.reservations_when_payment_down != "reject":
        return
    state = services.breaker.state()
    if state.state == "open":
        retry_after = max(1, math.ceil(state.retry_after_seconds or 1))
        raise PaymentsUnavailable(
            "payments are unavailable; reservations are paused, please retry later",
            headers={"Retry-After": str(retry_after)},
        )


async def admit_new_order(services: Services) -> None:
    """`refuse_when_payments_down` for an event loop. The breaker's state is a blocking store
    read, so it runs in a worker thread, and only when the operators asked to refuse."""
    if services.settings.reservations_when_payment_down == "reject":
        await asyncio.to_thread(refuse_when_payments_down, services)
