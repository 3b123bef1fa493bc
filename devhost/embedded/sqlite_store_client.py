"""The embedded document store as a client of the local store service (`devhost.store_service`).

Reads go straight to the SQLite file (WAL: they never wait for the writer, and a write the
service acknowledged is committed, so it is seen). Writes go to the service, which runs every
client's writes through one writer with group commit. Blocking calls use one connection per
thread; awaited calls share one pipelined connection per event loop. `wait_for_changes` is
woken by the service's commit notices.

A write whose connection breaks before its answer may or may not have been committed, as with
a Cosmos DB timeout: it raises ConnectionError and is never sent again by this client. A
connection that cannot be made (the service restarting) is retried for a few seconds first.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from devhost.embedded.group_commit import Priority
from devhost.embedded.sqlite_reader import SqliteReader
from devhost.embedded.store_wire import (
    COMMITTED,
    WATCH,
    FrameReader,
    FrameWriter,
    MalformedFrame,
    decode_error,
    encode_batch_operations,
    encode_conditions,
    encode_patch_operations,
    expand_result,
    frame,
)
from shared import topology
from shared.adapters.sockets import closed_while_idle
from shared.ports import BatchOperation, Condition, Document, PatchOperation

CONNECT_PATIENCE_SECONDS = 5.0
_RECEIVE_BYTES = 1 << 16


class SqliteStoreClient(SqliteReader):
    """DocumentStore, AsyncDocumentStore and ChangeFeed over `data_dir`, writing through the
    store service listening on `socket_path`. `priority` is that of every write: "low" for
    background work, which the service lets requests' writes overtake."""

    def __init__(
        self,
        data_dir: Path,
        socket_path: Path,
        containers: Mapping[str, topology.ContainerSpec] = topology.CONTAINERS,
        clock: Callable[[], float] = time.time,
        priority: Priority = "high",
    ) -> None:
        super().__init__(data_dir, containers, clock)
        self._socket_path = str(socket_path)
        self._priority = priority
        self._per_thread = threading.local()
        self._blocking: list[_BlockingConnection] = []
        self._pipelined: dict[asyncio.AbstractEventLoop, _PipelinedConnection] = {}
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._watching: socket.socket | None = None

    # ------------------------------------------------------------------ DocumentStore

    def create(self, container: str, document: Document) -> Document:
        return self._call("create", [container, document])

    def upsert(self, container: str, document: Document, if_match: str | None = None) -> Document:
        return self._call("upsert", [container, document, if_match])

    def replace(self, container: str, document: Document, if_match: str | None = None) -> Document:
        return self._call("replace", [container, document, if_match])

    def patch(
        self,
        container: str,
        partition_key: str,
        id: str,
        operations: Sequence[PatchOperation],
        condition: Sequence[Condition] = (),
        if_match: str | None = None,
    ) -> Document:
        return self._call(
            "patch",
            [
                container,
                partition_key,
                id,
                encode_patch_operations(operations),
                encode_conditions(condition),
                if_match,
            ],
        )

    def delete(
        self, container: str, partition_key: str, id: str, if_match: str | None = None
    ) -> None:
        self._call("delete", [container, partition_key, id, if_match])

    def batch(
        self, container: str, partition_key: str, operations: Sequence[BatchOperation]
    ) -> list[Document | None]:
        return self._call("batch", [container, partition_key, encode_batch_operations(operations)])

    # ------------------------------------------------------------------ AsyncDocumentStore

    async def create_async(self, container: str, document: Document) -> Document:
        return await self._call_async("create", [container, document])

    async def replace_async(
        self, container: str, document: Document, if_match: str | None = None
    ) -> Document:
        return await self._call_async("replace", [container, document, if_match])

    async def delete_async(
        self, container: str, partition_key: str, id: str, if_match: str | None = None
    ) -> None:
        await self._call_async("delete", [container, partition_key, id, if_match])

    async def batch_async(
        self, container: str, partition_key: str, operations: Sequence[BatchOperation]
    ) -> list[Document | None]:
        return await self._call_async(
            "batch", [container, partition_key, encode_batch_operations(operations)]
        )

    # ------------------------------------------------------------------ ChangeFeed

    def set_checkpoint(self, container: str, lease_prefix: str, lsn: int) -> None:
        self._call("set_checkpoint", [container, lease_prefix, lsn])

    def wait_for_changes(self, container: str, after_lsn: int, timeout: float) -> bool:
        self._start_watching()
        return super().wait_for_changes(container, after_lsn, timeout)

    # ------------------------------------------------------------------ connections

    def close(self) -> None:
        """Close every connection (calls under way fail). Further calls raise RuntimeError."""
        super().close()
        with self._lock:
            blocking, self._blocking = self._blocking, []
            pipelined, self._pipelined = list(self._pipelined.items()), {}
        for connection in blocking:
            connection.close()
        if self._watching is not None:
            self._watching.close()
        for loop, connection in pipelined:
            if not loop.is_closed():
                loop.call_soon_threadsafe(connection.close)

    def _call(self, method: str, args: list[Any]) -> Any:
        self._ensure_open()
        connection: _BlockingConnection | None = getattr(self._per_thread, "connection", None)
        if connection is None or not connection.usable():
            connection = _BlockingConnection(connect_patiently(self._socket_path))
            self._per_thread.connection = connection
            with self._lock:
                self._blocking = [c for c in self._blocking if not c.broken]
                self._blocking.append(connection)
        return expand_result(method, args, connection.call([1, method, args, self._priority]))

    async def _call_async(self, method: str, args: list[Any]) -> Any:
        self._ensure_open()
        loop = asyncio.get_running_loop()
        connection = self._pipelined.get(loop)
        if connection is None or not connection.ready:
            connection = await self._open_pipelined(loop)
        return expand_result(method, args, await connection.call(method, args, self._priority))

    async def _open_pipelined(self, loop: asyncio.AbstractEventLoop) -> _PipelinedConnection:
        """This loop's connection, opened by the first caller that needs it (the others wait
        for the same opening)."""
        with self._lock:
            connection = self._pipelined.get(loop)
            if connection is None or connection.broken:
                self._pipelined = {
                    other: kept for other, kept in self._pipelined.items() if not other.is_closed()
                }
                connection = self._pipelined[loop] = _PipelinedConnection(self._socket_path)
        await connection.opened
        return connection

    def _start_watching(self) -> None:
        with self._lock:
            if self._watcher is None:
                self._watcher = threading.Thread(
                    target=self._watch, name="store-commits", daemon=True
                )
                self._watcher.start()

    def _watch(self) -> None:
        """Hear of the service's commits for as long as this client is open; reconnect when the
        service restarts (meanwhile the reader's periodic re-check stands in)."""
        while not self._closed:
            try:
                with connect_patiently(self._socket_path) as connection:
                    self._watching = connection
                    connection.sendall(frame([1, WATCH, [], self._priority]))
                    reader = FrameReader()
                    while data := connection.recv(_RECEIVE_BYTES):
                        if any(m[1] == COMMITTED for m in reader.feed(data) if m[0] is None):
                            self._notify_commit()
            except OSError:
                time.sleep(0.2)


def connect_patiently(path: str) -> socket.socket:
    """A connection to the service, waiting up to CONNECT_PATIENCE_SECONDS while it starts."""
    deadline = time.monotonic() + CONNECT_PATIENCE_SECONDS
    while True:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(path)
            return connection
        except (FileNotFoundError, ConnectionRefusedError) as error:
            connection.close()
            if time.monotonic() > deadline:
                raise ConnectionError(f"the store service at {path} is unreachable") from error
            time.sleep(0.05)


def _outcome(message: Any) -> Any:
    """The result of an answer, or its error raised."""
    match message:
        case [_, "ok", result]:
            return result
        case [_, "error", dict() as error]:
            raise decode_error(error)
    raise MalformedFrame(f"not an answer: {message!r:.200}")


class _BlockingConnection:
    """One thread's connection: one call at a time."""

    def __init__(self, connection: socket.socket) -> None:
        self._socket = connection
        self._reader = FrameReader()
        self._writer = FrameWriter()
        self.broken = False

    def usable(self) -> bool:
        """False once broken, or closed by the service (it restarted) since the last call: such
        a connection is replaced before anything is sent on it."""
        if self.broken:
            return False
        if closed_while_idle(self._socket):
            self.close()
            return False
        return True

    def call(self, message: list[Any]) -> Any:
        request = self._writer.frame(message)
        try:
            self._socket.sendall(request)
            while True:
                data = self._socket.recv(_RECEIVE_BYTES)
                if not data:
                    raise ConnectionError("the store service closed the connection")
                answers = self._reader.feed(data)
                if answers:
                    return _outcome(answers[0])
        except OSError as error:
            self.close()
            raise ConnectionError(f"the store service connection broke: {error}") from error

    def close(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError):
            self._socket.close()


class _PipelinedConnection(asyncio.Protocol):
    """One event loop's connection: many calls in flight."""

    def __init__(self, path: str) -> None:
        self._reader = FrameReader()
        self._writer = FrameWriter()
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self.broken = False
        self.opened: asyncio.Task[None] = asyncio.ensure_future(self._open(path))

    @property
    def ready(self) -> bool:
        return self._transport is not None

    async def _open(self, path: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            connected = await asyncio.to_thread(connect_patiently, path)
            await loop.create_unix_connection(lambda: self, sock=connected)
        except BaseException:
            self.broken = True
            raise

    def call(self, method: str, args: list[Any], priority: Priority) -> asyncio.Future[Any]:
        call_id = next(self._ids)
        request = self._writer.frame([call_id, method, args, priority])
        if self._transport is None:
            raise ConnectionError("the store service connection is closed")
        answer = asyncio.get_running_loop().create_future()
        self._pending[call_id] = answer
        # Sent at once, not gathered for the end of the loop iteration: an iteration of an
        # HTTP host runs many requests, and the service would wait idle for all of them.
        self._transport.write(request)
        return answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        for message in self._reader.feed(data):
            answer = self._pending.pop(message[0], None)
            if answer is None or answer.done():
                continue  # its caller was cancelled
            try:
                answer.set_result(_outcome(message))
            except Exception as error:
                answer.set_exception(error)

    def connection_lost(self, exc: Exception | None) -> None:
        self.broken = True
        self._transport = None
        pending, self._pending = self._pending, {}
        for answer in pending.values():
            if not answer.done():
                answer.set_exception(ConnectionError("the store service connection broke"))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
