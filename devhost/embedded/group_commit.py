"""Group commit for the embedded store's one writer connection, with write priorities.

A thread that finds the writer idle becomes the leader, takes the writes queued meanwhile and
runs them in one `BEGIN IMMEDIATE` transaction, then commits once. Under concurrency many writes
share one fsync; alone, a write costs one commit as usual. A write that fails changes nothing
and the others still commit (see `_run_jobs`). Other processes may open the same file: `BEGIN
IMMEDIATE` with a busy timeout serialises their writers.

`submit` queues writes from an event loop; when nobody leads, the loop does, once per loop
iteration. A group takes at most `max_group` writes: with a client waiting on the other side of
a socket, small groups committed one after the other keep both sides busy, where one big group
would leave the client idle while it runs. Writes have a priority (`Priority`): background work
gives way to requests.

What a write does is the store's business (`sqlite_store`): here a write is a function of the
writer connection, run inside its group's transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from shared.ports import StoreError, TooManyRequests

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]
"""A write: run inside the transaction of its group, on the writer connection."""

Priority = Literal["high", "low"]
# Low-priority writes (Cosmos DB's priority-based execution: background work) give way to
# high-priority ones (requests) under load: while the last BUSY_WRITES high-priority writes
# all came within BUSY_SECONDS, or some wait, one low-priority write gets through every TRICKLE
# seconds, so background work is slowed down, never stopped. Otherwise they flow, PER_GROUP at
# most in a group. (A rate, not a quiet time: one request's write now and then must not hold
# back the saga it starts.)
LOW_PRIORITY_BUSY_WRITES = 20
LOW_PRIORITY_BUSY_SECONDS = 0.1
LOW_PRIORITY_TRICKLE_SECONDS = 0.05
LOW_PRIORITY_PER_GROUP = 8


@dataclass
class _WriteJob:
    work: Work[Any]
    result: Any = None
    error: BaseException | None = None
    done: bool = False
    future: asyncio.Future[Any] | None = None  # set when an event loop awaits the job


class GroupCommitScheduler:
    """Runs writes on `writer` in groups, one transaction and one commit per group.

    `on_begin` is called after each `BEGIN IMMEDIATE` of a group, `before_commit` just before its
    `COMMIT` (the store keeps its change-feed counters with them); `commit_listeners` after each
    group, from the thread that committed it."""

    def __init__(
        self,
        writer: sqlite3.Connection,
        *,
        max_group: int | None,
        on_begin: Callable[[], None],
        before_commit: Callable[[sqlite3.Connection], None],
        commit_listeners: list[Callable[[], None]],
    ) -> None:
        self._writer = writer
        self._max_group = max_group
        self._on_begin = on_begin
        self._before_commit = before_commit
        self._commit_listeners = commit_listeners
        self._closed = False
        self._write_cv = threading.Condition()
        self._pending: list[_WriteJob] = []
        self._pending_low: deque[_WriteJob] = deque()
        self._recent_high: deque[float] = deque(maxlen=LOW_PRIORITY_BUSY_WRITES)
        self._last_trickle = float("-inf")
        self._retry_pending = False
        self._leader_busy = False

    def add_commit_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every group commit, from the thread that committed it."""
        self._commit_listeners.append(listener)

    def close(self) -> None:
        """Wait for the leader at work; writes still queued fail, further writes raise
        RuntimeError."""
        with self._write_cv:
            while self._leader_busy:
                self._write_cv.wait()
            self._closed = True
            stranded, self._pending = [*self._pending, *self._pending_low], []
            self._pending_low.clear()
            self._write_cv.notify_all()
        _finish(stranded, RuntimeError("the store is closed"))
        _settle_awaited(stranded)

    def _ensure_open(self) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")

    def run(self, work: Work[T]) -> T:
        """Run `work` in a write transaction, grouped with writes queued by other threads."""
        job = _WriteJob(work)
        with self._write_cv:
            self._ensure_open()
            self._pending.append(job)
            self._recent_high.append(time.monotonic())
        while not job.done:  # lead, until a group (ours or another's) carries this job
            with self._write_cv:
                while not job.done and self._leader_busy:
                    self._write_cv.wait()
                group = [] if job.done else self._take_lead()
            if group:
                self._lead(group)
        if job.error is not None:
            raise job.error
        return job.result

    def submit(self, work: Work[T], priority: Priority = "high") -> asyncio.Future[T]:
        """Queue a write from an event loop, and let the loop lead if nobody does. The future
        resolves once the write is committed."""
        loop = asyncio.get_running_loop()
        job = _WriteJob(work, future=loop.create_future())
        with self._write_cv:
            self._ensure_open()
            # Jobs queued already have a leader coming (a lead scheduled on a loop, a thread
            # waiting to lead, a leader that hands them back when it steps down, or, for
            # low-priority jobs only, a retry when their turn comes): it takes this one too.
            # Only the first job of a group needs to call one.
            if priority == "low":
                first = not self._pending and not self._pending_low
                self._pending_low.append(job)
            else:
                first = not self._pending
                self._pending.append(job)
                self._recent_high.append(time.monotonic())
        if first:
            loop.call_soon(self._lead_on_loop)
        return job.future

    def _lead_on_loop(self) -> None:
        """On the event loop: run the next group and commit it, unless a leader is at work (it
        hands awaited jobs back to their loop when it steps down).

        The COMMIT waits for the disk on the loop too: a second group could not start before
        it ends anyway (one writer), and a committer thread cost more in handovers than it
        saved (measured in the store service: about a tenth of its throughput)."""
        with self._write_cv:
            if self._leader_busy or self._closed or not (self._pending or self._pending_low):
                return
            group = self._take_lead()
            if not group:  # only low-priority jobs, whose turn has not come
                self._leader_busy = False
                self._retry_lead_later()
                return
        self._lead(group)

    def _take_lead(self) -> list[_WriteJob]:
        """Become the leader and take the next group: the high-priority jobs queued (up to
        `max_group`), and low-priority ones as LOW_PRIORITY_* say. Call with `_write_cv` held."""
        self._ensure_open()
        self._leader_busy = True
        cut = len(self._pending) if self._max_group is None else self._max_group
        group, self._pending = self._pending[:cut], self._pending[cut:]
        waiting = self._pending_low
        if waiting:
            now = time.monotonic()
            if not self._pending and not self._requests_busy(now):
                take = min(len(waiting), LOW_PRIORITY_PER_GROUP)
            elif now - self._last_trickle >= LOW_PRIORITY_TRICKLE_SECONDS:
                take = 1
                self._last_trickle = now
            else:
                take = 0
            group.extend(waiting.popleft() for _ in range(take))
        return group

    def _requests_busy(self, now: float) -> bool:
        recent = self._recent_high
        return (
            len(recent) == LOW_PRIORITY_BUSY_WRITES and now - recent[0] <= LOW_PRIORITY_BUSY_SECONDS
        )

    def _retry_lead_later(self) -> None:
        """Come back for the waiting low-priority jobs when their turn comes (on their loop)."""
        if self._retry_pending:
            return
        self._retry_pending = True
        waited = time.monotonic() - self._last_trickle
        delay = max(0.0, LOW_PRIORITY_TRICKLE_SECONDS - waited)
        loop = self._pending_low[0].future.get_loop()  # type: ignore[union-attr]
        loop.call_later(delay, self._retried_lead)

    def _retried_lead(self) -> None:
        with self._write_cv:
            self._retry_pending = False
        self._lead_on_loop()

    def _lead(self, group: list[_WriteJob]) -> None:
        self._lead_to_the_end(group, lambda: self._commit(self._stage(group)))

    def _lead_to_the_end(self, group: list[_WriteJob], work: Callable[[], None]) -> None:
        try:
            work()
        except BaseException as error:
            _finish([job for job in group if not job.done], error)
        finally:
            self._step_down(group)

    def _step_down(self, group: list[_WriteJob]) -> None:
        with self._write_cv:
            self._leader_busy = False
            self._write_cv.notify_all()
            waiting = [*self._pending, *self._pending_low]
            loops = {job.future.get_loop() for job in waiting if job.future}
        for listener in self._commit_listeners:
            listener()
        _settle_awaited(group)
        for loop in loops:
            _call_soon_on(loop, self._lead_on_loop)

    def _stage(self, group: list[_WriteJob]) -> list[_WriteJob]:
        """Run the group in one open transaction, short of committing. Returns the jobs staged."""
        connection = self._writer
        remaining = group
        while remaining:
            try:
                begin_immediate(connection)
            except (TooManyRequests, sqlite3.Error) as error:
                _finish(remaining, error)
                return []
            self._on_begin()
            retry = self._run_jobs(connection, remaining)
            if retry is None:
                return remaining
            remaining = retry
        return []

    def _run_jobs(
        self, connection: sqlite3.Connection, group: list[_WriteJob]
    ) -> list[_WriteJob] | None:
        """Run each job in the open transaction; None, or the jobs to run again after a rollback.

        A job that fails with an expected error (a port error or a ValueError) having written
        nothing leaves the transaction as it was: that is every single operation, and every
        batch whose first write fails. One that fails after writing (a batch whose later
        operation fails), or fails unexpectedly, is undone with the whole transaction: it keeps
        its error and the others run again. (No savepoint per job: two statements each, for a
        case that is rare.)
        """
        for position, job in enumerate(group):
            job.result, job.error = None, None
            changes_before = connection.total_changes
            try:
                job.result = job.work(connection)
                continue
            except (StoreError, ValueError) as error:
                if connection.total_changes == changes_before:
                    job.error = error
                    continue
                failure: BaseException = error
            except BaseException as error:
                failure = error
            _rollback(connection)
            _finish([job], failure)
            return [*group[:position], *group[position + 1 :]]
        return None

    def _commit(self, staged: list[_WriteJob]) -> None:
        connection = self._writer
        try:
            if connection.in_transaction:
                self._before_commit(connection)
                connection.execute("COMMIT")
        except sqlite3.Error as error:
            _rollback(connection)
            _finish(staged, _translate(error))
            return
        for job in staged:
            job.done = True


def begin_immediate(connection: sqlite3.Connection) -> None:
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        raise _translate(error) from error


def _translate(error: sqlite3.Error) -> Exception:
    """A busy database (another process kept the write lock too long) is a 429."""
    if isinstance(error, sqlite3.OperationalError) and "locked" in str(error).lower():
        return TooManyRequests(str(error))
    return error


def _rollback(connection: sqlite3.Connection) -> None:
    if connection.in_transaction:
        connection.execute("ROLLBACK")


def _finish(jobs: Sequence[_WriteJob], error: BaseException) -> None:
    for job in jobs:
        job.error = error
        job.done = True


def _settle_awaited(jobs: Sequence[_WriteJob]) -> None:
    """Hand each awaited job's outcome to its future, on the future's own loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_WriteJob]] = {}
    for job in jobs:
        if job.future is not None:
            by_loop.setdefault(job.future.get_loop(), []).append(job)
    for loop, awaited in by_loop.items():
        _call_soon_on(loop, _resolve, awaited)


def _resolve(jobs: list[_WriteJob]) -> None:
    for job in jobs:
        future = job.future
        if future is None or future.done():
            continue  # the awaiting task was cancelled: the write stands all the same
        if job.error is not None:
            future.set_exception(job.error)
        else:
            future.set_result(job.result)


def _call_soon_on(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any
) -> None:
    """Run `callback` on `loop`: at once when we are on it, else through its thread-safe queue."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        callback(*args)
    elif not loop.is_closed():
        loop.call_soon_threadsafe(callback, *args)
