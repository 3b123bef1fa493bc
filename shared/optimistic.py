"""Optimistic concurrency: read, decide, write with the ETag read; when another writer got in
between, do it all again. One policy for every such loop in the app: at most `MAX_ATTEMPTS`
attempts, with a full-jitter pause between them so that racing writers stop colliding, then
`Contended`.

An attempt is a function that reads, decides and writes, and raises `LostRace` (or one of the
store errors it names in `retry_on`) when its conditional write lost; any other exception ends
the loop at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

MAX_ATTEMPTS = 20
_FIRST_PAUSE = 0.001
_MAX_PAUSE = 0.05


class LostRace(Exception):
    """Someone else changed the document between our read and our conditional write."""


class Contended(RuntimeError):
    """Other writers kept changing the document faster than this one could; the caller's
    message is redelivered or the request retried."""


def _pause(attempt: int) -> float:
    return random.uniform(0, min(_MAX_PAUSE, _FIRST_PAUSE * 2**attempt))


def retry_on_race(
    attempt: Callable[[], T],
    what: str,
    retry_on: tuple[type[Exception], ...] = (LostRace,),
) -> T:
    """`attempt()` until it does not lose a race; `what` names the document for `Contended`."""
    for number in range(MAX_ATTEMPTS):
        try:
            return attempt()
        except retry_on:
            if number + 1 < MAX_ATTEMPTS:
                time.sleep(_pause(number))
    raise Contended(f"{what} kept changing; retry")


async def retry_on_race_async(
    attempt: Callable[[], Awaitable[T]],
    what: str,
    retry_on: tuple[type[Exception], ...] = (LostRace,),
) -> T:
    """The same policy for a coroutine: the pause yields to the event loop."""
    for number in range(MAX_ATTEMPTS):
        try:
            return await attempt()
        except retry_on:
            if number + 1 < MAX_ATTEMPTS:
                await asyncio.sleep(_pause(number))
    raise Contended(f"{what} kept changing; retry")
