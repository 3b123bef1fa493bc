"""Drives a timer-triggered function on its schedule, as the Functions host does.

- `schedule`: an NCRONTAB expression of six fields, `{second} {minute} {hour} {day} {month}
  {day-of-week}`, in UTC (Azure's default without `WEBSITE_TIME_ZONE`), or a TimeSpan
  `[d.]hh:mm:ss` (an interval between occurrences; Azure takes it on App Service plans only).
  `%NAME%` stands for the app setting NAME, resolved from the environment as Azure does.
- `useMonitor` (default: on when occurrences are a minute or more apart, as in Azure): the last
  and next occurrence are stored (here in the leases container), so a host that starts after an
  occurrence was missed invokes the function at once with `past_due` set, then keeps to the
  schedule.
- `runOnStartup`: one invocation when the host starts (unless that past-due one is made instead),
  as Azure does on every start, restart and scale-out.
- One invocation at a time (Azure runs a timer function as a singleton): occurrences that pass
  while it runs are not made up. A failing invocation is retried under `@app.retry` if the
  function has one; either way the schedule goes on.

Microsoft's description of all of this: https://learn.microsoft.com/azure/azure-functions/
functions-bindings-timer (NCRONTAB expressions, TimeSpan, `runOnStartup`, `useMonitor`).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from azure.functions.timer import TimerRequest
from croniter import croniter

from devhost.metadata import FunctionSpec
from devhost.retry import RetryPolicy, retry_policy_of
from shared.domain.timestamps import format_timestamp
from shared.ports import DocumentStore, NotFound
from shared.topology import LEASES

log = logging.getLogger("devhost.timer")

Invoke = Callable[[FunctionSpec, Any], Any]
Now = Callable[[], datetime]

_SETTING = re.compile(r"^%([^%]+)%$")
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$")
_MONITOR_FROM = timedelta(minutes=1)


class Schedule(Protocol):
    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment`."""


class CronSchedule:
    def __init__(self, expression: str) -> None:
        if len(expression.split()) != 6 or not croniter.is_valid(
            expression, second_at_beginning=True
        ):
            raise ValueError(
                f"{expression!r} is not an NCRONTAB expression of six fields "
                "({second} {minute} {hour} {day} {month} {day-of-week})"
            )
        self.expression = expression

    def next_after(self, moment: datetime) -> datetime:
        return croniter(self.expression, moment, second_at_beginning=True).get_next(datetime)


class IntervalSchedule:
    def __init__(self, interval: timedelta) -> None:
        if interval <= timedelta(0):
            raise ValueError("a TimeSpan schedule must be longer than zero")
        self.interval = interval

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval


def parse_schedule(expression: str, environ: Mapping[str, str] = os.environ) -> Schedule:
    """The schedule of a timer trigger's `schedule` value; ValueError with the reason if none."""
    setting = _SETTING.match(expression.strip())
    if setting is not None:
        name = setting.group(1)
        if name not in environ:
            raise ValueError(f"the schedule names the app setting {name!r}, which is not set")
        expression = environ[name]
    expression = expression.strip()
    timespan = _TIMESPAN.match(expression)
    if timespan is not None:
        days, hours, minutes, seconds = (int(part or 0) for part in timespan.groups())
        return IntervalSchedule(timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds))
    return CronSchedule(expression)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TimerTrigger:
    """One timer for one function. `start`, then `stop`. Raises ValueError for a bad schedule."""

    def __init__(
        self,
        spec: FunctionSpec,
        store: DocumentStore,
        invoke: Invoke,
        now: Now = _utc_now,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.spec = spec
        self.schedule = parse_schedule(str(spec.trigger["schedule"]), environ)
        self._run_on_startup = bool(spec.trigger.get("runOnStartup", False))
        use_monitor = spec.trigger.get("useMonitor")
        self._use_monitor = bool(use_monitor) if use_monitor is not None else self._coarse()
        self._retry: RetryPolicy | None = retry_policy_of(spec.retry)
        self._store = store
        self._invoke = invoke
        self._now = now
        self._status_id = f"devhost-timer.{spec.name}"
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"timer-{spec.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Stop after the running invocation (returns at once; `stop` waits)."""
        self._stopping.set()

    def stop(self, timeout_seconds: float) -> None:
        self.request_stop()
        self._thread.join(timeout_seconds)
        if self._thread.is_alive():
            log.warning("%s still running at shutdown", self.spec.name)

    def _coarse(self) -> bool:
        """Are occurrences a minute or more apart (Azure's rule for `useMonitor`'s default)?"""
        first = self.schedule.next_after(datetime(2000, 1, 1, tzinfo=UTC))
        return self.schedule.next_after(first) - first >= _MONITOR_FROM

    def _run(self) -> None:
        now = self._now()
        status = self._load_status() if self._use_monitor else None
        last = status.last if status else None
        if status is not None and status.next <= now:
            self._fire(now, past_due=True, last=last)
        elif self._run_on_startup:
            self._fire(now, past_due=False, last=last)
        occurrence = self.schedule.next_after(self._now())
        self._save_status(last, occurrence)
        while not self._stopping.wait(_seconds_until(occurrence, self._now())):
            self._fire(occurrence, past_due=False, last=last)
            last = occurrence
            occurrence = self.schedule.next_after(max(occurrence, self._now()))
            self._save_status(last, occurrence)

    def _fire(self, at: datetime, *, past_due: bool, last: datetime | None) -> None:
        request = TimerRequest(
            past_due=past_due,
            schedule_status={
                "Last": format_timestamp(last) if last else None,
                "Next": format_timestamp(self.schedule.next_after(at)),
                "LastUpdated": format_timestamp(self._now()),
            },
            schedule={"AdjustForDST": True},
        )
        retries = 0
        while True:
            try:
                self._invoke(self.spec, request)
                return
            except Exception:
                log.exception(
                    "function %s failed (retry %d)",
                    self.spec.name,
                    retries,
                    extra={"function": self.spec.name},
                )
            if self._retry is None or not self._retry.allows(retries):
                return
            retries += 1
            if self._stopping.wait(self._retry.delay(retries)):
                return

    def _load_status(self) -> _Status | None:
        try:
            document = self._store.read(LEASES.name, self._status_id, self._status_id)
            last = document.get("last")
            return _Status(
                last=datetime.fromisoformat(last) if last else None,
                next=datetime.fromisoformat(document["next"]),
            )
        except NotFound:
            return None
        except Exception:
            log.exception("cannot read the schedule status of %s", self.spec.name)
            return None

    def _save_status(self, last: datetime | None, next_occurrence: datetime) -> None:
        if not self._use_monitor:
            return
        try:
            self._store.upsert(
                LEASES.name,
                {
                    "id": self._status_id,
                    "last": format_timestamp(last) if last else None,
                    "next": format_timestamp(next_occurrence),
                    "lastUpdated": format_timestamp(self._now()),
                },
            )
        except Exception:
            log.exception("cannot record the schedule status of %s", self.spec.name)


@dataclass(frozen=True)
class _Status:
    """What Azure's schedule monitor keeps per timer function."""

    last: datetime | None
    next: datetime


def _seconds_until(moment: datetime, now: datetime) -> float:
    return max(0.0, (moment - now).total_seconds())
