"""The local store service: the one process that writes the embedded document store.

In Azure the functions reach Cosmos DB over the network. devhost keeps that shape: this process
owns the SQLite file's writer and group-commits the writes of every client together, while the
function hosts (the HTTP host, the trigger host) are `SqliteStoreClient`s that read the file
directly and send their writes here over a Unix socket (`shared.adapters.store_wire`).

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
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

from devhost.lifeline import watch_lifeline
from devhost.log_setup import configure_host_logging
from devhost.purge import ExpiryPurger
from shared.adapters.sqlite_store import SqliteDocumentStore
from shared.adapters.store_wire import (
    COMMITTED,
    WATCH,
    FrameReader,
    MalformedFrame,
    decode_batch_operations,
    decode_conditions,
    decode_patch_operations,
    encode_error,
    frame,
)

log = logging.getLogger("devhost.store")


class StoreService:
    """Serves `store`'s writes on a Unix socket until `stop()`."""

    def __init__(self, store: SqliteDocumentStore) -> None:
        self._store = store
        self._connections: set[_ClientConnection] = set()
        self._watchers: set[_ClientConnection] = set()
        self._stopping = asyncio.Event()
        self._commit_told = True
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

    def call(self, method: str, args: Any) -> Awaitable[Any]:
        """The store's awaitable for one request. MalformedFrame when it is not one."""
        store = self._store
        match method, args:
            case "create", [str() as container, document]:
                return store.create_async(container, document)
            case "upsert", [str() as container, document, if_match]:
                return store.upsert_async(container, document, if_match)
            case "replace", [str() as container, document, if_match]:
                return store.replace_async(container, document, if_match)
            case "patch", [str() as container, pk, id, operations, condition, if_match]:
                return store.patch_async(
                    container,
                    pk,
                    id,
                    decode_patch_operations(operations),
                    decode_conditions(condition),
                    if_match,
                )
            case "delete", [str() as container, pk, id, if_match]:
                return store.delete_async(container, pk, id, if_match)
            case "batch", [str() as container, pk, operations]:
                return store.batch_async(container, pk, decode_batch_operations(operations))
            case "set_checkpoint", [str() as container, str() as lease_prefix, int() as lsn]:
                return store.set_checkpoint_async(container, lease_prefix, lsn)
        raise MalformedFrame(f"no such call: {method!r} with {len(args)} arguments")

    def watch(self, connection: _ClientConnection) -> None:
        self._watchers.add(connection)

    def opened(self, connection: _ClientConnection) -> None:
        self._connections.add(connection)

    def closed(self, connection: _ClientConnection) -> None:
        self._connections.discard(connection)
        self._watchers.discard(connection)

    def _on_commit(self) -> None:
        """From the committing thread: tell the watchers once per loop iteration at most."""
        if self._commit_told and self._loop is not None and self._watchers:
            self._commit_told = False
            self._loop.call_soon_threadsafe(self._tell_watchers)

    def _tell_watchers(self) -> None:
        self._commit_told = True
        committed = frame([None, COMMITTED, None])
        for watcher in self._watchers:
            watcher.send(committed)


class _ClientConnection(asyncio.Protocol):
    """One client connection: calls in, answers out (batched once per loop iteration)."""

    def __init__(self, service: StoreService) -> None:
        self._service = service
        self._reader = FrameReader()
        self._transport: asyncio.Transport | None = None
        self._outgoing: list[bytes] = []
        self._calls: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
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
        if not (isinstance(message, list) and len(message) == 3 and isinstance(message[2], list)):
            raise MalformedFrame(f"not a call: {message!r:.200}")
        call_id, method, args = message
        if method == WATCH:
            self._service.watch(self)
            self._answer(call_id, None)
            return
        try:
            awaitable = self._service.call(method, args)
        except ValueError as error:  # MalformedFrame, or the store refusing the arguments
            self._fail(call_id, error)
            return
        task = asyncio.ensure_future(self._finish(call_id, awaitable))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _finish(self, call_id: Any, awaitable: Awaitable[Any]) -> None:
        try:
            result = await awaitable
        except Exception as error:
            if encode_error(error)["type"] == "ServiceError":
                log.exception("a store call failed unexpectedly")
            self._fail(call_id, error)
        else:
            self._answer(call_id, result)

    def _answer(self, call_id: Any, result: Any) -> None:
        self.send(frame([call_id, "ok", result]))

    def _fail(self, call_id: Any, error: BaseException) -> None:
        self.send(frame([call_id, "error", encode_error(error)]))

    def send(self, data: bytes) -> None:
        if self._transport is None:
            return  # the client left; what it asked for is done all the same
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing.append(data)

    def _flush(self) -> None:
        if self._transport is not None and self._outgoing:
            self._transport.writelines(self._outgoing)
        self._outgoing = []

    async def drain(self) -> None:
        """Wait for the calls under way, and send their answers."""
        if self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)
        self._flush()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost.store_service")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--lifeline", type=int, help="a pipe whose end means: stop")
    args = parser.parse_args(argv)
    configure_host_logging()

    import uvloop

    store = SqliteDocumentStore(args.data_dir)
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
