"""The timer trigger: NCRONTAB and TimeSpan schedules, runOnStartup, and the schedule monitor's
past-due invocation, over a real embedded store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from devhost.embedded.sqlite_store import SqliteDocumentStore
from devhost.metadata import FunctionSpec, functions_of
from devhost.timer_trigger import TimerTrigger, parse_schedule
from shared.ports import NotFound
from shared.topology import LEASES
from tests.support.eventually import eventually

MIDNIGHT = datetime(2026, 1, 1, tzinfo=UTC)
YEARLY = "0 0 0 1 1 *"


class Recorder:
    def __init__(self, failures: int = 0) -> None:
        self.calls: list[func.TimerRequest] = []
        self.failures_left = failures
        self._lock = threading.Lock()

    def __call__(self, spec: FunctionSpec, timer: func.TimerRequest) -> None:
        with self._lock:
            self.calls.append(timer)
            if self.failures_left:
                self.failures_left -= 1
                raise RuntimeError("failing on purpose")


def _spec(name: str = "tick", retry: dict[str, str] | None = None, **trigger: Any) -> FunctionSpec:
    app = func.FunctionApp()

    def tick(timer: func.TimerRequest) -> None:
        """Not called: the tests invoke a Recorder in its place."""

    tick.__name__ = name
    decorated: Any = tick
    if retry is not None:
        decorated = app.retry(**retry)(decorated)
    app.timer_trigger(arg_name="timer", **trigger)(decorated)
    (spec,) = functions_of(app)
    return spec


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteDocumentStore]:
    store = SqliteDocumentStore(tmp_path)
    yield store
    store.close()


@pytest.fixture
def timers() -> Iterator[list[TimerTrigger]]:
    started: list[TimerTrigger] = []
    yield started
    for timer in started:
        timer.stop(5)


def _start(timers: list[TimerTrigger], timer: TimerTrigger) -> TimerTrigger:
    timers.append(timer)
    timer.start()
    return timer


def test_an_ncrontab_schedule_has_seconds_first() -> None:
    schedule = parse_schedule("*/15 * * * * *")
    assert schedule.next_after(MIDNIGHT + timedelta(seconds=7)) == MIDNIGHT + timedelta(seconds=15)
    every_five_minutes = parse_schedule("0 */5 * * * *")
    assert every_five_minutes.next_after(MIDNIGHT) == MIDNIGHT + timedelta(minutes=5)
    weekdays_at_nine_thirty = parse_schedule("0 30 9 * * 1-5")
    assert weekdays_at_nine_thirty.next_after(MIDNIGHT) == datetime(2026, 1, 1, 9, 30, tzinfo=UTC)


def test_a_timespan_schedule_is_an_interval() -> None:
    assert parse_schedule("00:00:30").next_after(MIDNIGHT) == MIDNIGHT + timedelta(seconds=30)
    day_and_two_hours = parse_schedule("1.02:00:00")
    assert day_and_two_hours.next_after(MIDNIGHT) == MIDNIGHT + timedelta(days=1, hours=2)


def test_a_schedule_may_name_an_app_setting() -> None:
    schedule = parse_schedule("%SWEEP%", {"SWEEP": "*/2 * * * * *"})
    assert schedule.next_after(MIDNIGHT) == MIDNIGHT + timedelta(seconds=2)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("* * * * *", "six fields"),
        ("*/61 * * * * * *", "six fields"),
        ("0 0 25 * * *", "six fields"),
        ("%UNSET_SCHEDULE_SETTING%", "not set"),
        ("00:00:00", "longer than zero"),
    ],
)
def test_a_wrong_schedule_is_refused_with_its_reason(expression: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_schedule(expression, {})


def test_a_timer_fires_on_each_occurrence_and_not_before(
    store: SqliteDocumentStore, timers: list[TimerTrigger]
) -> None:
    recorder = Recorder()
    _start(timers, TimerTrigger(_spec(schedule="* * * * * *"), store, recorder))
    eventually(lambda: len(recorder.calls) >= 3, timeout=6)
    timers[0].stop(5)
    assert not any(call.past_due for call in recorder.calls)
    assert len(recorder.calls) <= 5  # about one a second, never a burst


def test_run_on_startup_fires_once_at_start_then_keeps_to_the_schedule(
    store: SqliteDocumentStore, timers: list[TimerTrigger]
) -> None:
    recorder = Recorder()
    _start(timers, TimerTrigger(_spec(schedule=YEARLY, run_on_startup=True), store, recorder))
    eventually(lambda: recorder.calls)
    timers[0].stop(5)
    assert len(recorder.calls) == 1
    assert recorder.calls[0].past_due is False


def test_without_run_on_startup_nothing_fires_before_the_first_occurrence(
    store: SqliteDocumentStore, timers: list[TimerTrigger]
) -> None:
    recorder = Recorder()
    _start(timers, TimerTrigger(_spec(schedule=YEARLY), store, recorder))
    eventually(lambda: _status(store, "tick"))  # started and recorded its next occurrence
    timers[0].stop(5)
    assert recorder.calls == []
    assert _status(store, "tick")["next"].startswith(f"{datetime.now(UTC).year + 1}-01-01T00:00:00")


def test_an_occurrence_missed_while_the_host_was_down_fires_at_start_as_past_due(
    store: SqliteDocumentStore, timers: list[TimerTrigger]
) -> None:
    """The schedule monitor (on by default for a yearly schedule) recorded a next occurrence
    that has passed: the host was down then."""
    store.upsert(
        LEASES.name,
        {"id": "devhost-timer.tick", "last": None, "next": "2025-01-01T00:00:00.000000Z"},
    )
    recorder = Recorder()
    _start(timers, TimerTrigger(_spec(schedule=YEARLY, run_on_startup=True), store, recorder))
    eventually(lambda: recorder.calls)
    eventually(lambda: _status(store, "tick")["next"] > "2026")
    timers[0].stop(5)
    assert [call.past_due for call in recorder.calls] == [True]  # instead of the startup call


def test_a_fast_schedule_is_not_monitored_unless_asked(
    store: SqliteDocumentStore, timers: list[TimerTrigger]
) -> None:
    recorder = Recorder()
    _start(timers, TimerTrigger(_spec(schedule="* * * * * *"), store, recorder))
    eventually(lambda: recorder.calls)
    timers[0].stop(5)
    assert _status(store, "tick") == {}


def test_a_failing_invocation_is_retried_under_its_retry_policy(
    store: SqliteDocumentStore, timers: list[TimerTrigger]
) -> None:
    recorder = Recorder(failures=2)
    spec = _spec(
        schedule=YEARLY,
        run_on_startup=True,
        retry={"strategy": "fixed_delay", "max_retry_count": "3", "delay_interval": "00:00:00.050"},
    )
    _start(timers, TimerTrigger(spec, store, recorder))
    eventually(lambda: len(recorder.calls) == 3)


def _status(store: SqliteDocumentStore, name: str) -> dict[str, Any]:
    try:
        return store.read(LEASES.name, f"devhost-timer.{name}", f"devhost-timer.{name}")
    except NotFound:
        return {}
