"""The read side of the embedded document store: point reads, queries and the change feed over
the SQLite file, through a pool of reader connections (WAL lets them run beside a writer,
in this process or another).

`SqliteDocumentStore` is this plus the writer. `SqliteStoreClient` is this plus writes sent to
the process that owns the writer: both read the file directly.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from devhost.embedded.page_cache import PageCache, PageKey, PartitionState
from devhost.embedded.projections import ProjectionCache
from devhost.embedded.sqlite_query import (
    condition_sql,
    decode_token,
    encode_token,
    keyset_sql,
    ordering,
)
from shared import topology
from shared.adapters.document_paths import partition_key_segments
from shared.ports import Change, Condition, Document, JsonPage, NotFound, OrderBy, Page

DATABASE_FILE = "outerpark.sqlite3"
MAX_PAGE_SIZE = 1000
RECHECK_SECONDS = 0.5
BUSY_TIMEOUT_MS = 10_000

LIVE = "(expires_at IS NULL OR expires_at > ?)"
Sql = tuple[str, list[Any]]
ALWAYS: Sql = ("1", [])
Synchronous = Literal["FULL", "NORMAL"]


@dataclass(frozen=True)
class ContainerLayout:
    name: str
    pk_segments: tuple[str | int, ...]
    protected: tuple[str, ...]
    default_ttl: int | None


@dataclass(frozen=True)
class Current:
    document: Document
    etag: str


class SqliteReader:
    """Reads of the store in `data_dir/outerpark.sqlite3`, and waiting for its changes."""

    def __init__(
        self,
        data_dir: Path,
        containers: Mapping[str, topology.ContainerSpec] = topology.CONTAINERS,
        clock: Callable[[], float] = time.time,
        synchronous: Synchronous = "FULL",
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be FULL or NORMAL")
        self._path = data_dir / DATABASE_FILE
        self._synchronous = synchronous
        self._clock = clock
        self._containers = {name: _describe(spec) for name, spec in containers.items()}
        self._closed = False
        self._all_connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._changes_cv = threading.Condition()
        self._commits = 0
        self._projections = ProjectionCache()
        self._pages = PageCache()

    # ------------------------------------------------------------------ connections

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._path,
            isolation_level=None,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        connection.execute(f"PRAGMA synchronous={self._synchronous}")
        with self._connections_lock:
            self._all_connections.append(connection)
        return connection

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        self._ensure_open()
        try:
            connection = self._readers.get_nowait()
        except queue.Empty:
            connection = self._connect()
            connection.execute("PRAGMA query_only=1")
        try:
            yield connection
        finally:
            self._readers.put(connection)

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A reader connection inside one read transaction: its statements see one state of
        the file."""
        with self._reader() as connection, _one_snapshot(connection):
            yield connection

    def _ensure_open(self) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")

    def close(self) -> None:
        """Close every connection. Further calls raise RuntimeError."""
        self._closed = True
        with self._connections_lock:
            for connection in self._all_connections:
                connection.close()
            self._all_connections.clear()

    def _notify_commit(self) -> None:
        """Wake the waiters of `wait_for_changes`: something was committed."""
        with self._changes_cv:
            self._commits += 1
            self._changes_cv.notify_all()

    # ------------------------------------------------------------------ reads

    def _container(self, name: str) -> ContainerLayout:
        try:
            return self._containers[name]
        except KeyError:
            raise ValueError(f"unknown container {name!r}") from None

    def _current(
        self,
        connection: sqlite3.Connection,
        container: ContainerLayout,
        partition_key: str,
        id: str,
        now: float,
        condition: Sql = ALWAYS,
    ) -> tuple[Current | None, bool]:
        """The live item (or None) and whether `condition` (from `condition_sql`) holds on it."""
        where, params = condition
        row = connection.execute(
            f"SELECT body, etag, {where} FROM items"
            f" WHERE container = ? AND pk = ? AND id = ? AND {LIVE}",
            [*params, container.name, partition_key, id, now],
        ).fetchone()
        if row is None:
            return None, False
        return Current(json.loads(row[0]), row[1]), bool(row[2])

    def _do_read(
        self,
        connection: sqlite3.Connection,
        container: ContainerLayout,
        partition_key: str,
        id: str,
    ) -> Document:
        current, _ = self._current(connection, container, partition_key, id, self._clock())
        if current is None:
            raise NotFound(f"{container.name}/{partition_key}/{id}")
        return current.document

    def read(self, container: str, partition_key: str, id: str) -> Document:
        spec = self._container(container)
        with self._reader() as connection:
            return self._do_read(connection, spec, partition_key, id)

    async def read_async(self, container: str, partition_key: str, id: str) -> Document:
        # Inline: a WAL read never waits for the writer, and takes microseconds.
        return self.read(container, partition_key, id)

    def query(
        self,
        container: str,
        partition_key: str,
        where: Sequence[Condition] = (),
        order_by: Sequence[OrderBy] = (),
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page:
        with self._reader() as connection:
            rows, token = self._page(
                connection, container, partition_key, where, order_by, limit, continuation
            )
        return Page(items=[json.loads(row[1]) for row in rows], continuation=token)

    def _page(
        self,
        connection: sqlite3.Connection,
        container: str,
        partition_key: str,
        where: Sequence[Condition],
        order_by: Sequence[OrderBy],
        limit: int,
        continuation: str | None,
        selected: tuple[str, list[Any]] = ("body", []),
        kept: bool = False,
    ) -> tuple[list[Any], str | None]:
        """One keyset page: rows of (rowid, `selected` (SQL and its parameters), id, sort
        keys...), and the token of the next page. `kept`: served from the `PageCache` while
        the partition stays as it was."""
        spec = self._container(container)
        if isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be 1..{MAX_PAGE_SIZE}")
        select_sql, select_params = selected
        filter_sql, filter_params = condition_sql(where)
        order = ordering(order_by)
        keyset, keyset_params = "1", []
        if continuation is not None:
            values, last_id = decode_token(continuation, order.fingerprint)
            keyset, keyset_params = keyset_sql(order.directions, values, last_id)
        # Sort the keys, then select the page's rows by rowid: SQLite sorts whole result rows,
        # so selecting in the sorted query would build the JSON of every matching item.
        keys = "".join(f", page.k{index}" for index in range(len(order.directions)))
        sql = (
            f"SELECT page.r, (SELECT {select_sql} FROM items WHERE rowid = page.r), page.id{keys}"
            f" FROM (SELECT * FROM (SELECT rowid AS r, id{order.select_sql} FROM items"
            f" WHERE container = ? AND pk = ? AND {LIVE} AND {filter_sql})"
            f" WHERE {keyset} ORDER BY {order.order_sql} LIMIT ?) AS page"
            f" ORDER BY {order.order_sql}"
        )
        before = (*select_params, *order.select_params, spec.name, partition_key)
        after = (*filter_params, *keyset_params, limit + 1)
        now = self._clock()

        def read() -> list[Any]:
            return connection.execute(sql, [*before, now, *after]).fetchall()

        if kept:
            query = (sql, (*before, *after))  # without `now`: the partition's state stands for it
            rows = self._kept(connection, query, spec.name, partition_key, now, read)
        else:
            rows = read()
        token = None
        if len(rows) > limit:
            last = rows[limit - 1]
            token = encode_token(order.fingerprint, list(last[3:]), last[2])
        return rows[:limit], token

    def _kept(
        self,
        connection: sqlite3.Connection,
        key: PageKey,
        container: str,
        partition_key: str,
        now: float,
        read: Callable[[], list[Any]],
    ) -> list[Any]:
        """The page `read` gives, from the `PageCache` while the partition's state is the one
        it was kept at; else read with the state, in one read transaction, and kept. The state
        and the page are taken at the same time `now`, which decides what has expired."""
        rows = self._pages.get(key, self._state(connection, container, partition_key, now))
        if rows is None:
            with _one_snapshot(connection):
                state = self._state(connection, container, partition_key, now)
                rows = read()
            self._pages.put(key, state, rows)
        return rows

    def _state(
        self, connection: sqlite3.Connection, container: str, partition_key: str, now: float
    ) -> PartitionState:
        """How many items of the partition are live at `now`, and their highest `lsn`."""
        count, highest = connection.execute(
            f"SELECT count(*), max(lsn) FROM items WHERE container = ? AND pk = ? AND {LIVE}",
            [container, partition_key, now],
        ).fetchone()
        return count, highest

    # ------------------------------------------------------------------ ChangeFeed

    def read_changes(self, container: str, after_lsn: int, max_items: int = 100) -> list[Change]:
        spec = self._container(container)
        with self._reader() as connection:
            rows = connection.execute(
                f"SELECT lsn, body FROM items WHERE container = ? AND lsn > ? AND {LIVE}"
                " ORDER BY lsn LIMIT ?",
                [spec.name, after_lsn, self._clock(), max_items],
            ).fetchall()
        return [Change(lsn=row[0], document=json.loads(row[1])) for row in rows]

    def get_checkpoint(self, container: str, lease_prefix: str) -> int:
        spec = self._container(container)
        with self._reader() as connection:
            row = connection.execute(
                "SELECT lsn FROM checkpoints WHERE container = ? AND lease_prefix = ?",
                [spec.name, lease_prefix],
            ).fetchone()
        return 0 if row is None else int(row[0])

    def wait_for_changes(self, container: str, after_lsn: int, timeout: float) -> bool:
        """Block until `container` has a change with lsn > after_lsn, or `timeout` passes.

        Commits this process hears of (its own writes, or for a client the store service's
        notices) wake the waiter at once; any other writer's are seen by a re-check at most
        every RECHECK_SECONDS.
        """
        spec = self._container(container)
        deadline = time.monotonic() + timeout
        while True:
            with self._changes_cv:
                seen = self._commits
            if self._has_change_after(spec, after_lsn):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._changes_cv:
                if self._commits == seen:
                    self._changes_cv.wait(min(remaining, RECHECK_SECONDS))

    def _has_change_after(self, spec: ContainerLayout, after_lsn: int) -> bool:
        with self._reader() as connection:
            row = connection.execute(
                f"SELECT 1 FROM items WHERE container = ? AND lsn > ? AND {LIVE} LIMIT 1",
                [spec.name, after_lsn, self._clock()],
            ).fetchone()
        return row is not None

    # ------------------------------------------------------------------ AsyncDocumentStore reads

    async def query_async(
        self,
        container: str,
        partition_key: str,
        where: Sequence[Condition] = (),
        order_by: Sequence[OrderBy] = (),
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page:
        # Inline, as `read_async`: a WAL read never waits for the writer, and a page of a
        # partition is one indexed range; a thread hop would cost more than the read.
        return self.query(container, partition_key, where, order_by, limit, continuation)

    async def read_many_async(
        self, container: str, keys: Sequence[tuple[str, str]]
    ) -> list[Document]:
        """One statement for every key (inline, as `read_async`)."""
        with self._reader() as connection:
            found = self._many(connection, container, keys, "body")
        return [json.loads(body) for (body,) in found]

    async def read_many_json_async(
        self, container: str, keys: Sequence[tuple[str, str]], fields: Sequence[str]
    ) -> list[str]:
        """One statement for every key, each item's object of `fields` as in
        `query_json_async` (inline, as `read_async`)."""
        return self._texts(
            container, fields, lambda c: self._many(c, container, keys, "items.rowid, lsn")
        )

    def _texts(
        self,
        container: str,
        fields: Sequence[str],
        versions_of: Callable[[sqlite3.Connection], Sequence[tuple[int, int]]],
    ) -> list[str]:
        """The object of `fields` of each item whose (rowid, lsn) `versions_of` reads, in its
        order (`ProjectionCache`). When every text is known, that read is the only statement; when
        an item was written between it and the statement building the missing texts, both run
        again in one read transaction."""
        with self._reader() as connection:
            texts = self._projections.texts(connection, container, versions_of(connection), fields)
        if texts is None:
            with self._snapshot() as connection:
                texts = self._projections.texts(
                    connection, container, versions_of(connection), fields
                )
        assert texts is not None  # one read transaction: the versions read are still there
        return texts

    def _many(
        self,
        connection: sqlite3.Connection,
        container: str,
        keys: Sequence[tuple[str, str]],
        selected: str,
    ) -> list[tuple[Any, ...]]:
        """The `selected` columns of each live item of `keys`, in their order.

        The keys drive the join (CROSS JOIN keeps them the outer loop): each is one search of
        the primary index, whatever else the container holds. (`(pk, id) IN (VALUES ...)` was
        planned as a scan of the whole container.)"""
        spec = self._container(container)
        if not keys:
            return []
        pairs = ", ".join("(?, ?)" for _ in keys)
        rows = connection.execute(
            f"SELECT k.column1, k.column2, {selected} FROM (VALUES {pairs}) AS k"
            " CROSS JOIN items ON container = ? AND pk = k.column1 AND id = k.column2"
            f" WHERE {LIVE}",
            [*(part for key in keys for part in key), spec.name, self._clock()],
        ).fetchall()
        found = {(row[0], row[1]): row[2:] for row in rows}
        return [found[key] for key in map(tuple, keys) if key in found]

    async def query_json_async(
        self,
        container: str,
        partition_key: str,
        fields: Sequence[str],
        where: Sequence[Condition] = (),
        order_by: Sequence[OrderBy] = (),
        limit: int = 100,
        continuation: str | None = None,
    ) -> JsonPage:
        """`query`, each item as the object of `fields` taken from the stored body (see
        `ProjectionCache`), inline as `read_async`."""
        token: str | None = None

        def versions_of(connection: sqlite3.Connection) -> list[tuple[int, int]]:
            nonlocal token
            rows, token = self._page(
                connection,
                container,
                partition_key,
                where,
                order_by,
                limit,
                continuation,
                ("lsn", []),
                kept=True,
            )
            return [(row[0], row[1]) for row in rows]

        items = self._texts(container, fields, versions_of)
        return JsonPage(items=items, continuation=token)


@contextmanager
def _one_snapshot(connection: sqlite3.Connection) -> Iterator[None]:
    """The statements inside see one state of the file: a read transaction, unless the
    connection is in one already."""
    if connection.in_transaction:
        yield
        return
    connection.execute("BEGIN")
    try:
        yield
    finally:
        connection.execute("COMMIT")


def _describe(spec: topology.ContainerSpec) -> ContainerLayout:
    segments = partition_key_segments(spec.partition_key)
    protected = ("id", str(segments[0])) if len(segments) == 1 else ("id",)
    return ContainerLayout(spec.name, segments, protected, spec.default_ttl)
