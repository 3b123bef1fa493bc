"""The one optimistic-concurrency policy: retry a lost race a bounded number of times, with
a pause between attempts, and let every other failure through at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from shared import optimistic
from shared.optimistic import (
    MAX_ATTEMPTS,
    Contended,
    LostRace,
    retry_on_race,
    retry_on_race_async,
)
from shared.ports import Conflict, NotFound, PreconditionFailed

_PAUSE = optimistic._pause


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(optimistic, "_pause", lambda attempt: 0.0)


def _losing(
    times: int, error: Exception, result: str = "written"
) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(len(calls))
        if len(calls) <= times:
            raise error
        return result

    return calls, attempt


def test_an_attempt_that_loses_races_is_repeated_until_it_wins() -> None:
    calls, attempt = _losing(3, LostRace())
    assert retry_on_race(attempt, "doc") == "written"
    assert len(calls) == 4


def test_an_attempt_that_always_loses_gives_up_after_the_bound_with_contended() -> None:
    calls, attempt = _losing(10_000, LostRace())
    with pytest.raises(Contended, match="doc 7 kept changing"):
        retry_on_race(attempt, "doc 7")
    assert len(calls) == MAX_ATTEMPTS


def test_any_other_failure_ends_the_loop_at_once() -> None:
    calls, attempt = _losing(1, NotFound("gone"))
    with pytest.raises(NotFound):
        retry_on_race(attempt, "doc")
    assert len(calls) == 1


def test_the_store_errors_a_caller_names_count_as_lost_races() -> None:
    calls, attempt = _losing(2, PreconditionFailed("etag"))
    retried = (Conflict, PreconditionFailed)
    assert retry_on_race(attempt, "doc", retried) == "written"
    assert len(calls) == 3


def test_the_async_flavour_follows_the_same_policy() -> None:
    calls: list[int] = []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) < 5:
            raise LostRace
        return "written"

    assert asyncio.run(retry_on_race_async(attempt, "doc")) == "written"
    assert len(calls) == 5

    async def always_loses() -> str:
        raise LostRace

    with pytest.raises(Contended):
        asyncio.run(retry_on_race_async(always_loses, "doc"))


def test_the_pause_between_attempts_grows_with_full_jitter_and_stays_capped() -> None:
    first = [_PAUSE(0) for _ in range(200)]
    late = [_PAUSE(30) for _ in range(200)]
    assert all(0 <= pause <= 0.001 for pause in first)
    assert all(0 <= pause <= 0.05 for pause in late)
    assert max(late) > 0.01  # it grew
    assert len(set(late)) > 1  # and is jittered
