"""The local store service: the one process that writes the embedded document store.

In Azure the functions reach Cosmos DB over the network. devhost keeps that shape: this process
owns the SQLite file's writer and group-commits the writes of every client together, while the
function hosts (the HTTP host, the trigger hosts) are `SqliteStoreClient`s that read the file
directly and send their writes here over a Unix socket (`devhost.embedded.store_wire`).

Why a process of its own: the writes run on a core the HTTP host does not use, and the hosts
never contend for SQLite's write lock (whose waits sleep). Clients that sent `watch` hear of
every commit, so change-feed triggers in another process wake at once. Expired documents are
purged here, as Cosmos DB does in the background.

    python -m devhost.store_service --data-dir DIR --socket PATH [--lifeline FD]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from devhost.embedded.sqlite_store import (
    Batch,
    Priority,
    SetCheckpoint,
    SqliteDocumentStore,
    Write,
)
from devhost.embedded.store_wire import (
    COMMITTED,
    WATCH,
    FrameReader,
    FrameWriter,
    MalformedFrame,
    decode_batch_operations,
    decode_conditions,
    decode_patch_operations,
    encode_error,
    frame,
    shrink_result,
)
from devhost.lifeline import watch_lifeline
from devhost.log_setup import configure_host_logging
from devhost.purge import ExpiryPurger
from shared.ports import Create, Delete, Patch, Replace, Upsert

log = logging.getLogger("devhost.store")

NOTICE_INTERVAL_SECONDS = 0.01
_COMMITTED_NOTICE = frame([None, COMMITTED, None])
# Writes per group commit: fewer commit too often, more keep the HTTP host waiting on one
# group's answers (docs/performance.md).
MAX_GROUP = 8


class StoreService:
    """Serves `store`'s writes on a Unix socket until `stop()`."""

    def __init__(self, store: SqliteDocumentStore) -> None:
        self._store = store
        self._connections: set[_ClientConnection] = set()
        self._watchers: set[_ClientConnection] = set()
        self._stopping = asyncio.Event()
        self._notice_due = False
        self._last_notice = float("-inf")
        self._loop: asyncio.AbstractEventLoop | None = None
        store.add_commit_listener(self._on_commit)

    async def serve(self, socket_path: Path) -> None:
        """Listen on `socket_path` (readable by this user only) until `stop()`; then finish
        the calls under way and close the connections."""
        self._loop = asyncio.get_running_loop()
        server = await self._loop.create_unix_server(
            lambda: _ClientConnection(self), str(socket_path)
        )
        os.chmod(socket_path, 0o600)
        log.info("store service on %s", socket_path, extra={"socket": str(socket_path)})
        try:
            await self._stopping.wait()
        finally:
            server.close()
            await asyncio.gather(*(c.drain() for c in list(self._connections)))
            for connection in list(self._connections):
                connection.close()
            await server.wait_closed()

    def stop(self) -> None:
        """Thread-safe."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)

    def call(self, method: str, args: Any, priority: Priority) -> asyncio.Future[Any]:
        """Queue one request's write; its future resolves on commit. MalformedFrame when it is
        not a request, ValueError when the store refuses its arguments."""
        match method, args:
            case "create", [str() as container, document]:
                write = Write(container, Create(document))
            case "upsert", [str() as container, document, if_match]:
                write = Write(container, Upsert(document, if_match))
            case "replace", [str() as container, document, if_match]:
                write = Write(container, Replace(document, if_match))
            case "patch", [str() as container, pk, id, operations, condition, if_match]:
                patch = Patch(
                    id,
                    decode_patch_operations(operations),
                    decode_conditions(condition),
                    if_match,
                )
                write = Write(container, patch, pk)
            case "delete", [str() as container, pk, id, if_match]:
                write = Write(container, Delete(id, if_match), pk)
            case "batch", [str() as container, pk, operations]:
                write = Write(container, Batch(tuple(decode_batch_operations(operations))), pk)
            case "set_checkpoint", [str() as container, str() as lease_prefix, int() as lsn]:
                write = Write(container, SetCheckpoint(lease_prefix, lsn))
            case _:
                raise MalformedFrame(f"no such call: {method!r} with {len(args)} arguments")
        return self._store.submit(write, priority)

    def watch(self, connection: _ClientConnection) -> None:
        self._watchers.add(connection)

    def opened(self, connection: _ClientConnection) -> None:
        self._connections.add(connection)

    def closed(self, connection: _ClientConnection) -> None:
        self._connections.discard(connection)
        self._watchers.discard(connection)

    def _on_commit(self) -> None:
        """From the committing thread: tell the watchers, at most once every
        NOTICE_INTERVAL_SECONDS. Under load a change-feed consumer then wakes for a batch of
        changes, not for every commit; a lone commit is told at once."""
        if self._notice_due or self._loop is None or not self._watchers:
            return
        self._notice_due = True
        delay = max(0.0, self._last_notice + NOTICE_INTERVAL_SECONDS - time.monotonic())
        self._loop.call_soon_threadsafe(self._loop.call_later, delay, self._tell_watchers)

    def _tell_watchers(self) -> None:
        self._notice_due = False
        self._last_notice = time.monotonic()
        for watcher in self._watchers:
            watcher.send(_COMMITTED_NOTICE)


class _ClientConnection(asyncio.Protocol):
    """One client connection: calls in, each answer out as its call ends."""

    def __init__(self, service: StoreService) -> None:
        self._service = service
        self._reader = FrameReader()
        self._writer = FrameWriter()
        self._transport: asyncio.Transport | None = None
        self._calls: set[asyncio.Future[Any]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._service.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._service.closed(self)

    def data_received(self, data: bytes) -> None:
        try:
            for message in self._reader.feed(data):
                self._begin(message)
        except MalformedFrame:
            log.exception("closing a store client connection that sent a malformed frame")
            self.close()

    def _begin(self, message: Any) -> None:
        match message:
            case [call_id, str() as method, list() as args, "high" | "low" as priority]:
                pass
            case _:
                raise MalformedFrame(f"not a call: {message!r:.200}")
        if method == WATCH:
            self._service.watch(self)
            self._answer(call_id, None)
            return
        try:
            committed = self._service.call(method, args, priority)
        except ValueError as error:  # MalformedFrame, or the store refusing the arguments
            self._fail(call_id, error)
            return
        self._calls.add(committed)
        committed.add_done_callback(lambda done: self._finish(call_id, method, args, done))

    def _finish(
        self, call_id: Any, method: str, args: list[Any], committed: asyncio.Future[Any]
    ) -> None:
        self._calls.discard(committed)
        error = committed.exception()
        if error is None:
            self._answer(call_id, shrink_result(method, args, committed.result()))
            return
        self._fail(call_id, error)

    def _answer(self, call_id: Any, result: Any) -> None:
        self.send(self._writer.frame([call_id, "ok", result]))

    def _fail(self, call_id: Any, error: BaseException) -> None:
        encoded = encode_error(error)
        if encoded["type"] == "ServiceError":
            log.error("a store call failed unexpectedly", exc_info=error)
        self.send(self._writer.frame([call_id, "error", encoded]))

    def send(self, data: bytes) -> None:
        if self._transport is not None:  # else the client left; its calls stand all the same
            self._transport.write(data)

    async def drain(self) -> None:
        """Wait for the calls under way (each answer is sent as its call ends)."""
        if self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost.store_service")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--lifeline", type=int, help="a pipe whose end means: stop")
    args = parser.parse_args(argv)
    configure_host_logging("store")

    import uvloop

    store = SqliteDocumentStore(args.data_dir, max_group=MAX_GROUP)
    service = StoreService(store)
    purger = ExpiryPurger(store)
    if args.lifeline is not None:
        watch_lifeline(args.lifeline, service.stop)
    purger.start()
    try:
        uvloop.run(_serve_until_signalled(service, args.socket))
    finally:
        purger.stop()
        store.close()
    return 0


async def _serve_until_signalled(service: StoreService, socket_path: Path) -> None:
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.stop)
    await service.serve(socket_path)


if __name__ == "__main__":
    raise SystemExit(main())
