"""What the embedded store keeps between reads of the API's lists: the JSON of an item's chosen
fields by the item's version, and a query's page while its partition stays as it was. A page
read again builds no JSON and sorts nothing; an item written, deleted or expired since is
served as it is now."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path

from devhost.embedded.projections import ProjectionCache
from devhost.embedded.sqlite_store import SqliteDocumentStore
from shared.ports import OrderBy, Set
from shared.topology import ContainerSpec

ITEMS = ContainerSpec("items", "/pk", default_ttl=-1)  # TTL on, none by default
BY_N = (OrderBy("n"),)


class TracedStore(SqliteDocumentStore):
    """Keeps the SQL its connections run."""

    def __init__(self, data_dir: Path) -> None:
        self.statements: list[str] = []  # before the writer's connection is made
        super().__init__(data_dir, {ITEMS.name: ITEMS})

    def _connect(self) -> sqlite3.Connection:
        connection = super()._connect()
        connection.set_trace_callback(self.statements.append)
        return connection

    def ran(self, fragment: str) -> int:
        """How many statements run so far held `fragment`."""
        return sum(fragment in statement for statement in self.statements)


def traced_store(data_dir: Path, items: int = 3) -> TracedStore:
    """A traced store holding items i0.. in partition "p", `n` = their number."""
    store = TracedStore(data_dir)
    for n in range(items):
        store.create(ITEMS.name, {"id": f"i{n}", "pk": "p", "n": n})
    return store


def page(store: SqliteDocumentStore) -> list[dict[str, object]]:
    texts = asyncio.run(store.query_json_async(ITEMS.name, "p", ["id", "n"], order_by=BY_N))
    return [json.loads(text) for text in texts.items]


def test_a_page_read_again_builds_no_json_and_a_written_item_is_served_as_it_is_now(
    tmp_path: Path,
) -> None:
    store = traced_store(tmp_path)
    try:
        first = page(store)
        built = store.ran("json_object")
        again = page(store)
        assert store.ran("json_object") == built  # nothing built the second time
        store.patch(ITEMS.name, "p", "i1", [Set("n", 10)])
        after = page(store)
        many = asyncio.run(store.read_many_json_async(ITEMS.name, [("p", "i1")], ["n"]))
    finally:
        store.close()
    assert first == again == [{"id": "i0", "n": 0}, {"id": "i1", "n": 1}, {"id": "i2", "n": 2}]
    assert after == [{"id": "i0", "n": 0}, {"id": "i2", "n": 2}, {"id": "i1", "n": 10}]
    assert many == ['{"n":10}']


def test_a_full_cache_starts_again_and_still_answers_every_item(tmp_path: Path) -> None:
    store = traced_store(tmp_path, items=5)
    store._projections = ProjectionCache(capacity=5)
    try:
        first = [item["n"] for item in page(store)]  # the cache now full
        store.patch(ITEMS.name, "p", "i4", [Set("n", 9)])
        # Four texts known, one to build: the cache is emptied before it is kept.
        after_write = [item["n"] for item in page(store)]
        built = store.ran("json_object")
        store.patch(ITEMS.name, "p", "i4", [Set("n", 10)])
        again = [item["n"] for item in page(store)]
    finally:
        store.close()
    assert first == [0, 1, 2, 3, 4]
    assert after_write == [0, 1, 2, 3, 9]
    assert again == [0, 1, 2, 3, 10]
    [rebuilt] = [statement for statement in store.statements if "json_object" in statement][built:]
    rowids = re.search(r"rowid IN \(([^)]*)\)", rebuilt)
    assert rowids is not None
    assert len(rowids[1].split(",")) == 5  # the four others built again with it, at once


def test_an_item_written_since_its_version_was_read_gives_no_texts(tmp_path: Path) -> None:
    """The reader then reads the page and its texts again, in one read transaction."""
    store = SqliteDocumentStore(tmp_path, {ITEMS.name: ITEMS})
    store.create(ITEMS.name, {"id": "i0", "pk": "p", "n": 0})
    cache = ProjectionCache()
    try:
        with store._reader() as connection:
            read = connection.execute("SELECT rowid, lsn FROM items WHERE id = 'i0'").fetchall()
            store.patch(ITEMS.name, "p", "i0", [Set("n", 1)])
            stale = cache.texts(connection, ITEMS.name, read, ["n"])
            now = connection.execute("SELECT rowid, lsn FROM items WHERE id = 'i0'").fetchall()
            fresh = cache.texts(connection, ITEMS.name, now, ["n"])
    finally:
        store.close()
    assert stale is None
    assert fresh == ['{"n":1}']


def test_a_page_read_again_sorts_nothing_and_follows_every_write_of_its_partition(
    tmp_path: Path,
) -> None:
    store = traced_store(tmp_path)

    def sorted_now() -> list[object]:
        before = store.ran("ORDER BY")
        items = [item["id"] for item in page(store)]
        return [items, store.ran("ORDER BY") - before]

    try:
        first, again = sorted_now(), sorted_now()
        store.create(ITEMS.name, {"id": "i3", "pk": "p", "n": -1})
        created = sorted_now()
        store.patch(ITEMS.name, "p", "i0", [Set("n", 9)])
        patched = sorted_now()
        store.delete(ITEMS.name, "p", "i3")
        deleted = sorted_now()
        store.create(ITEMS.name, {"id": "elsewhere", "pk": "q", "n": 0})
        other_partition = sorted_now()
    finally:
        store.close()
    assert first == [["i0", "i1", "i2"], 1]
    assert again == [["i0", "i1", "i2"], 0]
    assert created == [["i3", "i0", "i1", "i2"], 1]
    assert patched == [["i3", "i1", "i2", "i0"], 1]
    assert deleted == [["i1", "i2", "i0"], 1]
    assert other_partition == [["i1", "i2", "i0"], 0]


def test_an_item_that_expires_leaves_a_kept_page(tmp_path: Path) -> None:
    now = [1_000.0]
    store = SqliteDocumentStore(tmp_path, {ITEMS.name: ITEMS}, clock=lambda: now[0])
    store.create(ITEMS.name, {"id": "short", "pk": "p", "n": 0, "ttl": 1})
    store.create(ITEMS.name, {"id": "long", "pk": "p", "n": 1})
    try:
        before = [item["id"] for item in page(store)]
        now[0] += 2.5
        after = [item["id"] for item in page(store)]
    finally:
        store.close()
    assert before == ["short", "long"]
    assert after == ["long"]
