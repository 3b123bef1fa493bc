"""Physically deletes expired documents every so often (Cosmos's TTL does it in the background)."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

log = logging.getLogger("devhost.purge")

DEFAULT_INTERVAL_SECONDS = 60.0


class Purgeable(Protocol):
    def purge_expired(self) -> int: ...


class ExpiryPurger:
    def __init__(
        self, store: Purgeable, interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    ) -> None:
        self._store = store
        self._interval = interval_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="purge-expired", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                purged = self._store.purge_expired()
            except Exception:
                log.exception("purging expired documents failed")
                continue
            if purged:
                log.info("purged %d expired documents", purged, extra={"purged": purged})
