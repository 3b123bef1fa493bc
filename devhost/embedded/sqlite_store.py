"""The embedded, durable document store: Cosmos DB semantics on one SQLite file.

Implements `DocumentStore` and `ChangeFeed` of `shared.ports`; its read side is `SqliteReader`,
the layout of the file `sqlite_store_schema`'s. devhost runs it in its store service
(`devhost.store_service`), which writes for every host process.

Writes go through one writer connection with group commit: a thread that finds the writer idle
becomes the leader, takes the writes queued meanwhile and runs them in one `BEGIN IMMEDIATE`
transaction, then commits once. Under concurrency many writes share one fsync; alone, a write
costs one commit as usual. A write that fails changes nothing and the others still commit (see
`_run_jobs`). Other processes may open the same file: `BEGIN IMMEDIATE` with a busy timeout
serialises their writers.

`submit` (and the `*_async` operations of `AsyncDocumentStore`) queue writes from an event loop;
when nobody leads, the loop does, once per loop iteration. A group takes at most `max_group`
writes: with a client waiting on the other side of a socket, small groups committed one after
the other keep both sides busy, where one big group would leave the client idle while it runs.
Writes have a priority (`Priority`): background work gives way to requests.

Every write stamps `_etag` and `_ts` on the stored document and moves it to the container's next
`lsn`; the change feed is "items ordered by lsn", so it holds the latest version of each item.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from devhost.embedded.sqlite_query import condition_sql
from devhost.embedded.sqlite_reader import (
    DATABASE_FILE,
    ContainerLayout,
    Sql,
    SqliteReader,
    Synchronous,
)
from devhost.embedded.sqlite_store_schema import ensure_schema
from shared import topology
from shared.adapters.document_paths import apply_patch, get_field
from shared.ports import (
    MAX_BATCH_OPERATIONS,
    BatchFailed,
    BatchOperation,
    Condition,
    Create,
    Delete,
    Document,
    NotFound,
    Patch,
    PatchOperation,
    PreconditionFailed,
    Read,
    Replace,
    StoreError,
    TooManyRequests,
    Upsert,
)
from shared.ports import Conflict as ConflictError

__all__ = ["DATABASE_FILE", "SqliteDocumentStore"]

_FORBIDDEN_ID_CHARACTERS = set("/\\?#")
# Built once: json.dumps with options builds an encoder on every call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]
"""A write: run inside the transaction of its group, on the writer connection."""

# The writer copies the WAL into the database once it holds this many pages (~40 MB; SQLite's
# default is 1,000). Hot pages (a musical's seats, the indexes' upper levels) are then copied
# once per checkpoint instead of ten times: measured, the store service's CPU per reservation
# fell by a sixth (the checkpoint runs inside a commit, on the writer).
WAL_CHECKPOINT_PAGES = 10_000

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


class SqliteDocumentStore(SqliteReader):
    """Cosmos-DB-shaped document store and change feed in `data_dir/outerpark.sqlite3`."""

    def __init__(
        self,
        data_dir: Path,
        containers: Mapping[str, topology.ContainerSpec] = topology.CONTAINERS,
        clock: Callable[[], float] = time.time,
        synchronous: Synchronous = "FULL",
        max_group: int | None = None,
    ) -> None:
        super().__init__(data_dir, containers, clock, synchronous)
        data_dir.mkdir(parents=True, exist_ok=True)
        self._max_group = max_group
        self._writer = self._connect()
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._writer.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        _begin_immediate(self._writer)
        ensure_schema(self._writer)
        self._writer.execute("COMMIT")
        self._write_cv = threading.Condition()
        self._pending: list[_WriteJob] = []
        self._pending_low: deque[_WriteJob] = deque()
        self._recent_high: deque[float] = deque(maxlen=LOW_PRIORITY_BUSY_WRITES)
        self._last_trickle = float("-inf")
        self._retry_pending = False
        self._leader_busy = False
        self._lsns: dict[str, list[int]] = {}  # the leader's lsn counters, per transaction
        # Waiters of wait_for_changes in this process first.
        self._commit_listeners: list[Callable[[], None]] = [self._notify_commit]

    def add_commit_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every group commit, from the thread that committed it."""
        self._commit_listeners.append(listener)

    def close(self) -> None:
        """Close every connection; writes still queued fail. Further calls raise RuntimeError."""
        with self._write_cv:
            while self._leader_busy:
                self._write_cv.wait()
            self._closed = True
            stranded, self._pending = [*self._pending, *self._pending_low], []
            self._pending_low.clear()
            self._write_cv.notify_all()
        _finish(stranded, RuntimeError("the store is closed"))
        _settle_awaited(stranded)
        super().close()

    # ------------------------------------------------------------------ group commit

    def _write(self, work: Work[T]) -> T:
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
        """Queue a write built by one of the `*_work` methods, from an event loop, and let the
        loop lead if nobody does. The future resolves once the write is committed."""
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
                _begin_immediate(connection)
            except (TooManyRequests, sqlite3.Error) as error:
                _finish(remaining, error)
                return []
            self._lsns.clear()
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
                self._save_lsns(connection)
                connection.execute("COMMIT")
        except sqlite3.Error as error:
            _rollback(connection)
            _finish(staged, _translate(error))
            return
        for job in staged:
            job.done = True

    def _next_lsn(self, connection: sqlite3.Connection, container: ContainerLayout) -> int:
        """The container's next lsn, counted in memory for the length of the transaction."""
        counter = self._lsns.get(container.name)
        if counter is None:
            row = connection.execute(
                "SELECT lsn FROM lsn_counters WHERE container = ?", [container.name]
            ).fetchone()
            counter = self._lsns[container.name] = [0 if row is None else int(row[0])]
        counter[0] += 1
        return counter[0]

    def _save_lsns(self, connection: sqlite3.Connection) -> None:
        for container, (lsn,) in self._lsns.items():
            connection.execute(
                "INSERT INTO lsn_counters (container, lsn) VALUES (?, ?)"
                " ON CONFLICT (container) DO UPDATE SET lsn = excluded.lsn",
                [container, lsn],
            )

    # ------------------------------------------------------------------ helpers

    def _prepare(self, container: ContainerLayout, document: Document) -> tuple[Document, str]:
        """A copy of `document` for the store to stamp, and its partition key value.

        The copy is shallow: it becomes text (and so private) when the write runs, which is
        also where a value JSON cannot hold is refused."""
        if not isinstance(document, dict):
            raise ValueError("a document is a JSON object")
        copy = dict(document)
        _check_id(copy.get("id"))
        partition_key = get_field(copy, container.pk_segments)
        if not isinstance(partition_key, str):
            raise ValueError(f"document needs a string partition key at {container.pk_segments!r}")
        return copy, partition_key

    def _expires_at(
        self, container: ContainerLayout, document: Document, now: float
    ) -> float | None:
        if container.default_ttl is None:
            return None
        ttl = document.get("ttl", container.default_ttl)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl == 0 or ttl < -1:
            raise ValueError("ttl must be -1 or a positive integer of seconds")
        return None if ttl == -1 else now + ttl

    def _stamp(
        self,
        connection: sqlite3.Connection,
        container: ContainerLayout,
        document: Document,
        now: float,
    ) -> tuple[list[Any], Document]:
        """System properties + the column values of a write (etag, body, expiry, lsn)."""
        # Unique, not secret: os.urandom would be a system call per write. (The random module
        # reseeds itself in a forked child, so two processes never share a sequence.)
        etag = f'"{random.getrandbits(128):032x}"'
        document["_etag"] = etag
        document["_ts"] = int(now)
        expires_at = self._expires_at(container, document, now)
        try:
            body = _ENCODE(document)
        except (TypeError, ValueError) as error:
            raise ValueError(f"document is not valid JSON: {error}") from error
        return [body, etag, expires_at, self._next_lsn(connection, container)], document

    def _insert(
        self,
        connection: sqlite3.Connection,
        container: ContainerLayout,
        partition_key: str,
        document: Document,
        now: float,
        *,
        overwrite: bool,
    ) -> Document:
        """Insert; a live item with that id is overwritten or raises Conflict."""
        values, stored = self._stamp(connection, container, document, now)
        guard = "" if overwrite else "WHERE items.expires_at IS NOT NULL AND items.expires_at <= ?"
        cursor = connection.execute(
            "INSERT INTO items (container, pk, id, body, etag, expires_at, lsn)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (container, pk, id) DO UPDATE SET body = excluded.body,"
            " etag = excluded.etag, expires_at = excluded.expires_at, lsn = excluded.lsn " + guard,
            [container.name, partition_key, document["id"], *values] + ([] if overwrite else [now]),
        )
        if cursor.rowcount == 0:
            raise ConflictError(f"{container.name}/{partition_key}/{document['id']} exists")
        return stored

    def _update(
        self,
        connection: sqlite3.Connection,
        container: ContainerLayout,
        partition_key: str,
        document: Document,
        now: float,
    ) -> Document:
        values, stored = self._stamp(connection, container, document, now)
        connection.execute(
            "UPDATE items SET body = ?, etag = ?, expires_at = ?, lsn = ?"
            " WHERE container = ? AND pk = ? AND id = ?",
            [*values, container.name, partition_key, document["id"]],
        )
        return stored

    # ------------------------------------------------------------------ operations in a transaction

    def _do_create(
        self,
        connection: sqlite3.Connection,
        container: ContainerLayout,
        partition_key: str,
        document: Document,
    ) -> Document:
        return self._insert(
            connection, container, partition_key, document, self._clock(), overwrite=False
        )

    def _do_upsert(
        self,
        connection: sqlite3.Connection,
        container: ContainerLayout,
        partition_key: str,
        document: Document,
        if_match: str | None,
    ) -> Document:
        now = self._clock()
        if if_match is None:
            return self._insert(connection, container, partition_key, document, now, overwrite=True)
        current, _ = self._current(connection, container, partition_key, document["id"], now)
        if current is None or current.etag != if_match:
            raise PreconditionFailed(f"etag mismatch on {document['id']}")
        return self._update(connection, container, partition_key, document, now)

    def _do_replace(
        self,
        connection: sqlite3.Connection,
        container: ContainerLayout,
        partition_key: str,
        document: Document,
        if_match: str | None,
    ) -> Document:
        now = self._clock()
        current, _ = self._current(connection, container, partition_key, document["id"], now)
        if current is None:
            raise NotFound(f"{container.name}/{partition_key}/{document['id']}")
        if if_match is not None and current.etag != if_match:
            raise PreconditionFailed(f"etag mismatch on {document['id']}")
        return self._update(connection, container, partition_key, document, now)

    def _do_patch(
        self,
        connection: sqlite3.Connection,
        container: ContainerLayout,
        partition_key: str,
        id: str,
        operations: Sequence[PatchOperation],
        condition: Sql,
        if_match: str | None,
    ) -> Document:
        now = self._clock()
        current, holds = self._current(connection, container, partition_key, id, now, condition)
        if current is None:
            raise NotFound(f"{container.name}/{partition_key}/{id}")
        if if_match is not None and current.etag != if_match:
            raise PreconditionFailed(f"etag mismatch on {id}")
        if not holds:
            raise PreconditionFailed(f"patch condition does not hold on {id}")
        apply_patch(current.document, operations, container.protected)
        return self._update(connection, container, partition_key, current.document, now)

    def _do_delete(
        self,
        connection: sqlite3.Connection,
        container: ContainerLayout,
        partition_key: str,
        id: str,
        if_match: str | None,
    ) -> None:
        current, _ = self._current(connection, container, partition_key, id, self._clock())
        if current is None:
            raise NotFound(f"{container.name}/{partition_key}/{id}")
        if if_match is not None and current.etag != if_match:
            raise PreconditionFailed(f"etag mismatch on {id}")
        connection.execute(
            "DELETE FROM items WHERE container = ? AND pk = ? AND id = ?",
            [container.name, partition_key, id],
        )

    # ------------------------------------------------------------------ DocumentStore

    def create(self, container: str, document: Document) -> Document:
        return self._write(self.create_work(container, document))

    def create_work(
        self, container: str, document: Document
    ) -> Callable[[sqlite3.Connection], Document]:
        spec = self._container(container)
        copy, partition_key = self._prepare(spec, document)
        return lambda c: self._do_create(c, spec, partition_key, copy)

    def upsert(self, container: str, document: Document, if_match: str | None = None) -> Document:
        return self._write(self.upsert_work(container, document, if_match))

    def upsert_work(
        self, container: str, document: Document, if_match: str | None
    ) -> Callable[[sqlite3.Connection], Document]:
        spec = self._container(container)
        copy, partition_key = self._prepare(spec, document)
        return lambda c: self._do_upsert(c, spec, partition_key, copy, if_match)

    def replace(self, container: str, document: Document, if_match: str | None = None) -> Document:
        return self._write(self.replace_work(container, document, if_match))

    def replace_work(
        self, container: str, document: Document, if_match: str | None
    ) -> Callable[[sqlite3.Connection], Document]:
        spec = self._container(container)
        copy, partition_key = self._prepare(spec, document)
        return lambda c: self._do_replace(c, spec, partition_key, copy, if_match)

    def patch(
        self,
        container: str,
        partition_key: str,
        id: str,
        operations: Sequence[PatchOperation],
        condition: Sequence[Condition] = (),
        if_match: str | None = None,
    ) -> Document:
        return self._write(
            self.patch_work(container, partition_key, id, operations, condition, if_match)
        )

    def patch_work(
        self,
        container: str,
        partition_key: str,
        id: str,
        operations: Sequence[PatchOperation],
        condition: Sequence[Condition],
        if_match: str | None,
    ) -> Callable[[sqlite3.Connection], Document]:
        spec = self._container(container)
        holds = condition_sql(condition)  # validates before queueing
        return lambda c: self._do_patch(c, spec, partition_key, id, operations, holds, if_match)

    def delete(
        self, container: str, partition_key: str, id: str, if_match: str | None = None
    ) -> None:
        self._write(self.delete_work(container, partition_key, id, if_match))

    def delete_work(
        self, container: str, partition_key: str, id: str, if_match: str | None
    ) -> Callable[[sqlite3.Connection], None]:
        spec = self._container(container)
        return lambda c: self._do_delete(c, spec, partition_key, id, if_match)

    def batch(
        self, container: str, partition_key: str, operations: Sequence[BatchOperation]
    ) -> list[Document | None]:
        return self._write(self.batch_work(container, partition_key, operations))

    def batch_work(
        self, container: str, partition_key: str, operations: Sequence[BatchOperation]
    ) -> Callable[[sqlite3.Connection], list[Document | None]]:
        spec = self._container(container)
        if not 1 <= len(operations) <= MAX_BATCH_OPERATIONS:
            raise ValueError(f"a batch takes 1 to {MAX_BATCH_OPERATIONS} operations")
        steps = [self._batch_step(spec, partition_key, op) for op in operations]

        def run(connection: sqlite3.Connection) -> list[Document | None]:
            results: list[Document | None] = []
            for index, step in enumerate(steps):
                try:
                    results.append(step(connection))
                except StoreError as cause:
                    raise BatchFailed(index, cause) from cause
            return results

        return run

    # ------------------------------------------------------------------ AsyncDocumentStore

    async def create_async(self, container: str, document: Document) -> Document:
        return await self.submit(self.create_work(container, document))

    async def replace_async(
        self,
        container: str,
        document: Document,
        if_match: str | None = None,
    ) -> Document:
        return await self.submit(self.replace_work(container, document, if_match))

    async def delete_async(
        self,
        container: str,
        partition_key: str,
        id: str,
        if_match: str | None = None,
    ) -> None:
        await self.submit(self.delete_work(container, partition_key, id, if_match))

    async def batch_async(
        self,
        container: str,
        partition_key: str,
        operations: Sequence[BatchOperation],
    ) -> list[Document | None]:
        return await self.submit(self.batch_work(container, partition_key, operations))

    def _batch_step(
        self, spec: ContainerLayout, partition_key: str, operation: BatchOperation
    ) -> Callable[[sqlite3.Connection], Document | None]:
        """Validate one batch operation now; return what runs it inside the transaction."""
        if isinstance(operation, Create | Upsert | Replace):
            copy, document_pk = self._prepare(spec, operation.document)
            if document_pk != partition_key:
                raise ValueError("every batch document must be in the batch's partition")
            if isinstance(operation, Create):
                return lambda c: self._do_create(c, spec, partition_key, copy)
            if isinstance(operation, Upsert):
                return lambda c: self._do_upsert(c, spec, partition_key, copy, operation.if_match)
            return lambda c: self._do_replace(c, spec, partition_key, copy, operation.if_match)
        if isinstance(operation, Patch):
            holds = condition_sql(operation.condition)
            return lambda c: self._do_patch(
                c,
                spec,
                partition_key,
                operation.id,
                operation.operations,
                holds,
                operation.if_match,
            )
        if isinstance(operation, Delete):
            return lambda c: self._do_delete(
                c, spec, partition_key, operation.id, operation.if_match
            )
        if isinstance(operation, Read):
            return lambda c: self._do_read(c, spec, partition_key, operation.id)
        raise ValueError(f"unknown batch operation {operation!r}")

    # ------------------------------------------------------------------ ChangeFeed

    def set_checkpoint(self, container: str, lease_prefix: str, lsn: int) -> None:
        self._write(self.checkpoint_work(container, lease_prefix, lsn))

    def checkpoint_work(
        self, container: str, lease_prefix: str, lsn: int
    ) -> Callable[[sqlite3.Connection], None]:
        spec = self._container(container)

        def run(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT INTO checkpoints (container, lease_prefix, lsn) VALUES (?, ?, ?)"
                " ON CONFLICT (container, lease_prefix) DO UPDATE"
                " SET lsn = max(lsn, excluded.lsn)",
                [spec.name, lease_prefix, lsn],
            )

        return run

    # ------------------------------------------------------------------ embedded-only extras

    def delete_checkpoint(self, container: str, lease_prefix: str) -> None:
        """Forget a consumer's checkpoint (a rebuild replays its feed from the beginning)."""
        spec = self._container(container)
        self._write(
            lambda connection: connection.execute(
                "DELETE FROM checkpoints WHERE container = ? AND lease_prefix = ?",
                [spec.name, lease_prefix],
            )
        )

    def purge_expired(self) -> int:
        """Physically delete expired items; returns how many."""

        def run(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(
                "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?",
                [self._clock()],
            )
            return cursor.rowcount

        return self._write(run)


def _check_id(id: Any) -> None:
    if not isinstance(id, str) or not id or len(id) > 255:
        raise ValueError("a document needs an `id`: a string of 1 to 255 characters")
    if _FORBIDDEN_ID_CHARACTERS.intersection(id):
        raise ValueError("an id may not contain '/', '\\', '?' or '#'")


def _begin_immediate(connection: sqlite3.Connection) -> None:
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
