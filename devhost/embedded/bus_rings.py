"""Rings between processes that share the embedded bus: "a message is ready on topic T,
subscription S" as one Unix datagram, so a consumer in another process wakes at once instead
of at its next re-check of the database.

One process listens on the socket (devhost's host of the Service Bus triggers); any process
that publishes sends to it. A ring is a hint and may be lost (no listener yet, a full socket
buffer): the listener's re-check still finds the message, only later.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("outerpark.bus")

_MAX_DATAGRAM = 1024
_SEPARATOR = "\0"


def encode_ring(topic: str, subscription: str, count: int) -> bytes:
    return _SEPARATOR.join((topic, subscription, str(count))).encode()


def decode_ring(datagram: bytes) -> tuple[str, str, int] | None:
    """The ring in `datagram`, or None for anything else (it is ignored)."""
    try:
        topic, subscription, count = datagram.decode().split(_SEPARATOR)
        return topic, subscription, int(count)
    except ValueError:
        return None


class RingSender:
    """Sends rings to the listener at `path`, without ever blocking or failing the caller."""

    def __init__(self, path: Path) -> None:
        self._path = str(path)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)

    def ring(self, topic: str, subscription: str, count: int) -> None:
        # No listener, or its buffer full: the ring is dropped (see the module docstring).
        with contextlib.suppress(OSError):
            self._socket.sendto(encode_ring(topic, subscription, count), self._path)

    def close(self) -> None:
        self._socket.close()


class RingListener:
    """Listens at `path` on a daemon thread and calls `on_ring(topic, subscription, count)`."""

    def __init__(self, path: Path, on_ring: Callable[[str, str, int], None]) -> None:
        self._path = path
        self._on_ring = on_ring
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        path.unlink(missing_ok=True)  # left by a listener that was killed
        self._socket.bind(str(path))
        self._closed = False
        self._thread = threading.Thread(target=self._listen, name="bus-rings", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while True:
            try:
                datagram = self._socket.recv(_MAX_DATAGRAM)
            except OSError:
                return
            if self._closed:
                return
            ring = decode_ring(datagram)
            if ring is None:
                log.warning("ignored a malformed bus ring: %r", datagram[:100])
                continue
            self._on_ring(*ring)

    def close(self) -> None:
        # shutdown wakes the thread blocked in recv; close alone would not.
        self._closed = True
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._thread.join(5)
        with contextlib.suppress(OSError):
            self._path.unlink()
