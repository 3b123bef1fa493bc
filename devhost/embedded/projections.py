"""The JSON text of chosen fields of stored items, kept by item version.

SQLite builds such an object (`json_object` of one `->` per field) by parsing the item's body
once per field: for a 20-item history page of 16 fields, about half of the statement's time.
An item's `lsn` moves with each write of it and is never given twice in its container, so a
text kept under (container, lsn, fields) is that item's for as long as it is found: a page reads
the versions of its items, and builds the texts of only those not seen before.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import cast


class ProjectionCache:
    """Per process: texts by (container, lsn, fields); emptied whole when full (reads of a
    page find the texts they need again in one statement)."""

    def __init__(self, capacity: int = 20_000) -> None:
        self._capacity = capacity
        self._texts: dict[tuple[str, int, tuple[str, ...]], str] = {}
        self._lock = threading.Lock()

    def texts(
        self,
        connection: sqlite3.Connection,
        container: str,
        versions: Sequence[tuple[int, int]],
        fields: Sequence[str],
    ) -> list[str] | None:
        """The object of `fields` of each item given as (rowid, lsn), in that order; None when
        one of them is no longer at that version (written since `versions` was read, which
        cannot happen when both reads are in one read transaction). Every text built is kept
        under the version it was built from."""
        chosen = tuple(fields)
        found = [self._texts.get((container, lsn, chosen)) for _, lsn in versions]
        missing = [rowid for (rowid, _), text in zip(versions, found, strict=True) if text is None]
        if not missing:
            return cast(list[str], found)  # every text was known
        select_sql, select_params = json_object_of(chosen)
        marks = ", ".join("?" for _ in missing)
        built: dict[int, str] = dict(
            connection.execute(
                f"SELECT lsn, {select_sql} FROM items WHERE rowid IN ({marks})",
                [*select_params, *missing],
            ).fetchall()
        )
        with self._lock:
            if len(self._texts) + len(built) > self._capacity:
                self._texts.clear()
            self._texts.update(((container, lsn, chosen), text) for lsn, text in built.items())
        texts = [
            built.get(lsn) if text is None else text
            for (_, lsn), text in zip(versions, found, strict=True)
        ]
        return None if None in texts else cast(list[str], texts)


def json_object_of(fields: Sequence[str]) -> tuple[str, list[str]]:
    """SQL (and its parameters) of the JSON object of the stored body's top-level `fields`, in
    that order; `->` keeps each value's JSON type, and a missing field is null."""
    projection = ", ".join("?, body -> ?" for _ in fields)
    return f"json_object({projection})", [part for name in fields for part in (name, f'$."{name}"')]
