"""The local store service run in a thread of the test process, for the client's tests."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import uvloop

from devhost.embedded.sqlite_store import SqliteDocumentStore
from devhost.embedded.sqlite_store_client import connect_patiently
from devhost.store_service import StoreService
from shared import topology
from shared.topology import ContainerSpec


@contextmanager
def running_store_service(
    data_dir: Path,
    containers: Mapping[str, ContainerSpec] = topology.CONTAINERS,
    clock: Callable[[], float] | None = None,
    socket_path: Path | None = None,
) -> Iterator[Path]:
    """Serve a store over `data_dir` until the block ends; yields the socket's path: a new one
    (kept short: Unix socket paths have a length limit that test directories can exceed), or
    `socket_path` served again."""
    store = (
        SqliteDocumentStore(data_dir, containers)
        if clock is None
        else SqliteDocumentStore(data_dir, containers, clock=clock)
    )
    service = StoreService(store)
    with tempfile.TemporaryDirectory(prefix="op-") as sockets:
        path = socket_path or Path(sockets) / "store.sock"
        # On uvloop, as devhost runs it (its transports are not asyncio's classes).
        serving = threading.Thread(target=lambda: uvloop.run(service.serve(path)), daemon=True)
        serving.start()
        connect_patiently(str(path)).close()  # its file exists a moment before it listens
        try:
            yield path
        finally:
            service.stop()
            serving.join(10)
            store.close()
