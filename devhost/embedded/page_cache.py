"""Pages of the API's list queries, kept per process while their partition stays as it was.

A partition's live items are known by their state: how many there are, and the highest `lsn`
among them. Every write of an item gives it a new, higher `lsn`; a delete or an expiry lowers
the count, and only a write, with a higher `lsn`, could raise it again. So while the state is
what it was, so is every live item, and so is a page of a query (a function of those items and
of the query alone): one indexed count stands in for the filter and the sort over the bodies.
"""

from __future__ import annotations

import threading
from typing import Any

PartitionState = tuple[int, int | None]
PageKey = tuple[str, tuple[Any, ...]]


class PageCache:
    """Per process: each query's page rows with the partition state they were read at; emptied
    whole when full."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._pages: dict[PageKey, tuple[PartitionState, list[Any]]] = {}
        self._lock = threading.Lock()

    def get(self, key: PageKey, state: PartitionState) -> list[Any] | None:
        """The rows kept for `key`, if they were read at `state`."""
        kept = self._pages.get(key)
        return kept[1] if kept is not None and kept[0] == state else None

    def put(self, key: PageKey, state: PartitionState, rows: list[Any]) -> None:
        """Keep `rows`, read in the same read transaction as `state`."""
        with self._lock:
            if len(self._pages) >= self._capacity:
                self._pages.clear()
            self._pages[key] = (state, rows)
