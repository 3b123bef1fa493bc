"""When to try a deferred payment again: exponential backoff with full jitter."""

from __future__ import annotations

import random
from collections.abc import Callable

# 2**64 seconds is far past any cap; stopping the exponent there keeps the float finite.
_MAX_EXPONENT = 64


def payment_retry_delay(
    failed_attempts: int,
    *,
    base_seconds: float,
    max_seconds: float,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds to wait before the next attempt, after `failed_attempts` (>= 1) failures.

    Full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"): the delay is drawn
    uniformly from [0, min(max_seconds, base_seconds * 2 ** (failed_attempts - 1))]. Spreading
    retries over the whole window keeps deferred payments from hitting a recovering gateway in
    synchronised waves, and the cap bounds the wait between two attempts of one payment.

    Why the defaults (base 1 s, cap 20 s, breaker open 10 s, 1 probe, cache 1 s, gateway
    timeout 3 s) complete every deferred payment within 60 s of the gateway's recovery at R:

    - A call that started before R may still fail up to one timeout after it, so the breaker
      opens for the last time at O <= R + 3 s, and turns half-open at O + 10 s.
    - Every deferred payment is attempted again at most 20 s (the cap) after its previous
      attempt, whatever its attempt count: an attempt the open breaker refuses is cheap and
      is simply rescheduled. So the first attempt after O + 10 s, which becomes the probe,
      starts by O + 30 s; the gateway being healthy, it succeeds and closes the breaker by
      O + 31 s (a healthy call is well under a second; a decline closes it too).
    - Other instances may see the half-open state for one more cache period (1 s), so the
      last refused attempt happens by O + 32 s and its retry starts by O + 52 s and ends by
      O + 53 s <= R + 56 s: under 60 s, with a few seconds left for message delivery.

    Raising the cap, the open duration or the timeout eats that margin: keep
    timeout + open + 2 x cap + cache + 2 x healthy call under 60 s.
    """
    if failed_attempts < 1:
        raise ValueError("failed_attempts counts failures so far and starts at 1")
    exponent = min(failed_attempts - 1, _MAX_EXPONENT)
    ceiling = min(max_seconds, base_seconds * 2.0**exponent)
    return uniform(0.0, ceiling)
