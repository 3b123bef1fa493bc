"""HTTP first: trigger invocations yield to HTTP requests.

In Azure, HTTP and background triggers scale out on separate instances and never compete. Here
they share one process and one SQLite writer, and a saga's many background writes would queue
ahead of the requests' (measured: reservations fell from ~1,700 to ~330 req/s under load). So
while HTTP is busy (a request in flight, or one ended less than `quiet_seconds` ago), at most
`busy_limit` trigger invocations run at once; when HTTP is idle they run at their full
concurrency and drain what built up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT_BUSY_LIMIT = 1
DEFAULT_QUIET_SECONDS = 0.2


class HttpFirstGate:
    def __init__(
        self, busy_limit: int = DEFAULT_BUSY_LIMIT, quiet_seconds: float = DEFAULT_QUIET_SECONDS
    ) -> None:
        if busy_limit < 1:
            raise ValueError("busy_limit must be at least 1, or background work could starve")
        self._busy_limit = busy_limit
        self._quiet_seconds = quiet_seconds
        self._last_http_end = float("-inf")
        self._changed = threading.Condition()
        self._http_in_flight = 0
        self._background_running = 0

    def http_started(self) -> None:
        with self._changed:
            self._http_in_flight += 1

    def http_finished(self) -> None:
        with self._changed:
            self._http_in_flight -= 1
            self._last_http_end = time.monotonic()

    @contextmanager
    def background(self) -> Iterator[None]:
        """Hold one background slot for the duration of a trigger invocation."""
        with self._changed:
            while self._background_running >= self._busy_limit:
                busy_for = self._busy_for()
                if busy_for <= 0:
                    break
                self._changed.wait(busy_for)
            self._background_running += 1
        try:
            yield
        finally:
            with self._changed:
                self._background_running -= 1
                self._changed.notify()

    def _busy_for(self) -> float:
        """Seconds HTTP stays busy at least (a request in flight counts as a quiet period)."""
        if self._http_in_flight:
            return self._quiet_seconds
        return self._last_http_end + self._quiet_seconds - time.monotonic()
