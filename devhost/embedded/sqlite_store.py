"""The embedded, durable document store: Cosmos DB semantics on one SQLite file.

Implements `DocumentStore` and `ChangeFeed` of `shared.ports`; its read side is `SqliteReader`,
the layout of the file `sqlite_store_schema`'s. devhost runs it in its store service
(`devhost.store_service`), which writes for every host process.

Writes run in groups, one transaction and one fsync each, through `GroupCommitScheduler`
(`group_commit`), with priorities; this module says what each write does. A write is described
by a `Write` (a `shared.ports` operation on a container) and submitted once: the synchronous and
async operations of the ports and devhost's store service all go through `write`/`submit`.

Every write stamps `_etag` and `_ts` on the stored document and moves it to the container's next
`lsn`; the change feed is "items ordered by lsn", so it holds the latest version of each item.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from devhost.embedded.group_commit import GroupCommitScheduler, Priority, Work, begin_immediate
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
    Upsert,
)
from shared.ports import Conflict as ConflictError

__all__ = ["DATABASE_FILE", "Batch", "Priority", "SetCheckpoint", "SqliteDocumentStore", "Write"]

_FORBIDDEN_ID_CHARACTERS = set("/\\?#")
# Built once: json.dumps with options builds an encoder on every call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode

# WAL pages before the writer checkpoints (~40 MB; SQLite's default is 1,000): hot pages (a
# musical's seats, the indexes' upper levels) are copied once per checkpoint, not ten times, and
# the checkpoint runs inside a commit, on the writer (docs/performance.md).
WAL_CHECKPOINT_PAGES = 10_000


@dataclass(frozen=True)
class Batch:
    """A transactional batch in the write's partition."""

    operations: tuple[BatchOperation, ...]


@dataclass(frozen=True)
class SetCheckpoint:
    """A change-feed consumer's position (never moves back)."""

    lease_prefix: str
    lsn: int


@dataclass(frozen=True)
class Write:
    """One write to the store: an operation on a container. Patch, Delete and Batch name their
    partition; the other operations take it from their document."""

    container: str
    operation: Create | Upsert | Replace | Patch | Delete | Batch | SetCheckpoint
    partition_key: str | None = None


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
        writer = self._connect()
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        begin_immediate(writer)
        ensure_schema(writer)
        writer.execute("COMMIT")
        self._lsns: dict[str, list[int]] = {}  # the lsn counters of the group's transaction
        self._scheduler = GroupCommitScheduler(
            writer,
            max_group=max_group,
            on_begin=self._lsns.clear,
            before_commit=self._save_lsns,
            # Waiters of wait_for_changes in this process first.
            commit_listeners=[self._notify_commit],
        )

    def add_commit_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every group commit, from the thread that committed it."""
        self._scheduler.add_commit_listener(listener)

    def close(self) -> None:
        """Close every connection; writes still queued fail. Further calls raise RuntimeError."""
        self._scheduler.close()
        super().close()

    def write(self, write: Write) -> Any:
        """Run one write, grouped with the writes of other threads; its result once committed."""
        return self._scheduler.run(self._work(write))

    def submit(self, write: Write, priority: Priority = "high") -> asyncio.Future[Any]:
        """Queue one write from an event loop; the future resolves once it is committed.
        ValueError (at once) when the write is malformed."""
        return self._scheduler.submit(self._work(write), priority)

    # ------------------------------------------------------------------ change-feed positions

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

    # ------------------------------------------------------------------ writes

    def _work(self, write: Write) -> Work[Any]:
        """Validate a write now; return what runs it inside its group's transaction."""
        spec = self._container(write.container)
        operation = write.operation
        if isinstance(operation, SetCheckpoint):
            return lambda c: self._do_set_checkpoint(c, spec, operation)
        if isinstance(operation, Batch):
            if write.partition_key is None:
                raise ValueError("a batch needs a partition key")
            return self._batch_work(spec, write.partition_key, operation.operations)
        return self._step(spec, write.partition_key, operation)

    def _batch_work(
        self, spec: ContainerLayout, partition_key: str, operations: Sequence[BatchOperation]
    ) -> Work[list[Document | None]]:
        if not 1 <= len(operations) <= MAX_BATCH_OPERATIONS:
            raise ValueError(f"a batch takes 1 to {MAX_BATCH_OPERATIONS} operations")
        steps = [self._step(spec, partition_key, op) for op in operations]

        def run(connection: sqlite3.Connection) -> list[Document | None]:
            results: list[Document | None] = []
            for index, step in enumerate(steps):
                try:
                    results.append(step(connection))
                except StoreError as cause:
                    raise BatchFailed(index, cause) from cause
            return results

        return run

    def _step(
        self, spec: ContainerLayout, partition_key: str | None, operation: BatchOperation
    ) -> Work[Document | None]:
        """Validate one operation now; return what runs it. A document's operation in a known
        partition (a batch's) must be in that partition; the others must name theirs."""
        if isinstance(operation, Create | Upsert | Replace):
            copy, document_pk = self._prepare(spec, operation.document)
            if partition_key is None:
                partition_key = document_pk
            elif document_pk != partition_key:
                raise ValueError("every batch document must be in the batch's partition")
            if isinstance(operation, Create):
                return lambda c: self._do_create(c, spec, partition_key, copy)
            if isinstance(operation, Upsert):
                return lambda c: self._do_upsert(c, spec, partition_key, copy, operation.if_match)
            return lambda c: self._do_replace(c, spec, partition_key, copy, operation.if_match)
        if partition_key is None:
            raise ValueError(f"{type(operation).__name__} needs a partition key")
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

    def _do_set_checkpoint(
        self, connection: sqlite3.Connection, spec: ContainerLayout, checkpoint: SetCheckpoint
    ) -> None:
        connection.execute(
            "INSERT INTO checkpoints (container, lease_prefix, lsn) VALUES (?, ?, ?)"
            " ON CONFLICT (container, lease_prefix) DO UPDATE"
            " SET lsn = max(lsn, excluded.lsn)",
            [spec.name, checkpoint.lease_prefix, checkpoint.lsn],
        )

    # ------------------------------------------------------------------ DocumentStore

    def create(self, container: str, document: Document) -> Document:
        return cast(Document, self.write(Write(container, Create(document))))

    def upsert(self, container: str, document: Document, if_match: str | None = None) -> Document:
        return cast(Document, self.write(Write(container, Upsert(document, if_match))))

    def replace(self, container: str, document: Document, if_match: str | None = None) -> Document:
        return cast(Document, self.write(Write(container, Replace(document, if_match))))

    def patch(
        self,
        container: str,
        partition_key: str,
        id: str,
        operations: Sequence[PatchOperation],
        condition: Sequence[Condition] = (),
        if_match: str | None = None,
    ) -> Document:
        patch = Patch(id, operations, condition, if_match)
        return cast(Document, self.write(Write(container, patch, partition_key)))

    def delete(
        self, container: str, partition_key: str, id: str, if_match: str | None = None
    ) -> None:
        self.write(Write(container, Delete(id, if_match), partition_key))

    def batch(
        self, container: str, partition_key: str, operations: Sequence[BatchOperation]
    ) -> list[Document | None]:
        batch = Batch(tuple(operations))
        return cast(list[Document | None], self.write(Write(container, batch, partition_key)))

    # ------------------------------------------------------------------ AsyncDocumentStore

    async def create_async(self, container: str, document: Document) -> Document:
        return cast(Document, await self.submit(Write(container, Create(document))))

    async def replace_async(
        self,
        container: str,
        document: Document,
        if_match: str | None = None,
    ) -> Document:
        return cast(Document, await self.submit(Write(container, Replace(document, if_match))))

    async def delete_async(
        self,
        container: str,
        partition_key: str,
        id: str,
        if_match: str | None = None,
    ) -> None:
        await self.submit(Write(container, Delete(id, if_match), partition_key))

    async def batch_async(
        self,
        container: str,
        partition_key: str,
        operations: Sequence[BatchOperation],
    ) -> list[Document | None]:
        write = Write(container, Batch(tuple(operations)), partition_key)
        return cast(list[Document | None], await self.submit(write))

    # ------------------------------------------------------------------ ChangeFeed

    def set_checkpoint(self, container: str, lease_prefix: str, lsn: int) -> None:
        self.write(Write(container, SetCheckpoint(lease_prefix, lsn)))

    # ------------------------------------------------------------------ embedded-only extras

    def delete_checkpoint(self, container: str, lease_prefix: str) -> None:
        """Forget a consumer's checkpoint (a rebuild replays its feed from the beginning)."""
        spec = self._container(container)
        self._scheduler.run(
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

        return self._scheduler.run(run)


def _check_id(id: Any) -> None:
    if not isinstance(id, str) or not id or len(id) > 255:
        raise ValueError("a document needs an `id`: a string of 1 to 255 characters")
    if _FORBIDDEN_ID_CHARACTERS.intersection(id):
        raise ValueError("an id may not contain '/', '\\', '?' or '#'")
