"""A query or a change-feed read costs the same however big the container grows.

Cost is counted in SQLite virtual-machine steps (a progress handler called on every step), so
the test is exact and never timed.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from devhost.embedded.sqlite_store import SqliteDocumentStore
from shared.ports import Condition, Create, OrderBy
from shared.topology import ContainerSpec

ITEMS = ContainerSpec("items", "/pk", default_ttl=-1)


class CountingStore(SqliteDocumentStore):
    """Counts the VM steps its connections run."""

    steps = 0

    def _connect(self) -> sqlite3.Connection:
        connection = super()._connect()
        connection.set_progress_handler(self._count, 1)
        return connection

    def _count(self) -> int:
        self.steps += 1
        return 0


def build(data_dir: Path, other_items: int) -> CountingStore:
    """20 items in partition "target", `other_items` spread over other partitions."""
    store = CountingStore(data_dir, {ITEMS.name: ITEMS})
    store.batch(
        ITEMS.name,
        "target",
        [Create({"id": f"t{n:02d}", "pk": "target", "n": n}) for n in range(20)],
    )
    for start in range(0, other_items, 100):
        partition = f"p{start // 100}"
        store.batch(
            ITEMS.name,
            partition,
            [Create({"id": f"o{n}", "pk": partition, "n": n}) for n in range(start, start + 100)],
        )
    return store


def query_steps(store: CountingStore) -> int:
    where, order = [Condition("n", ">=", 5)], [OrderBy("n", descending=True)]
    before = store.steps
    page = store.query(ITEMS.name, "target", where, order, limit=10)
    store.query(ITEMS.name, "target", where, order, limit=10, continuation=page.continuation)
    return store.steps - before


def feed_tail_steps(store: CountingStore) -> int:
    last = store.read_changes(ITEMS.name, 0, max_items=1_000_000)[-1].lsn
    before = store.steps
    store.read_changes(ITEMS.name, last - 5)
    return store.steps - before


@pytest.mark.slow
def test_a_partition_query_and_a_feed_read_cost_the_same_in_small_and_huge_containers(
    tmp_path: Path,
) -> None:
    small = build(tmp_path / "small", 1_000)
    huge = build(tmp_path / "huge", 100_000)

    assert query_steps(small) == query_steps(huge)
    assert feed_tail_steps(small) == feed_tail_steps(huge)
    small.close()
    huge.close()


def test_a_page_builds_the_json_of_its_own_items_only(tmp_path: Path) -> None:
    """SQLite sorts whole result rows: selecting the answer's JSON in the sorted query would
    build it for every item of the partition, not only for the page's."""
    store = CountingStore(tmp_path, {ITEMS.name: ITEMS})
    fields = {f"f{f}": f for f in range(16)}
    documents = [{"id": f"i{n:03d}", "pk": "big", "n": n, **fields} for n in range(300)]
    for start in range(0, 300, 100):
        store.batch(ITEMS.name, "big", [Create(d) for d in documents[start : start + 100]])
    store.close()
    order = [OrderBy("n", descending=True)]

    def page_steps(fields: tuple[str, ...]) -> int:
        """On a store opened for it: nothing of the page is kept from before (page_cache.py,
        projections.py)."""
        reader = CountingStore(tmp_path, {ITEMS.name: ITEMS})
        before = reader.steps
        try:
            page = asyncio.run(
                reader.query_json_async(ITEMS.name, "big", fields, [], order, limit=10)
            )
        finally:
            reader.close()
        assert len(page.items) == 10
        return reader.steps - before

    plain = page_steps(("id",))
    rich = page_steps(tuple(f"f{f}" for f in range(16)))

    # Sixteen fields instead of one, for ten items: a few hundred steps more, not thousands.
    assert rich - plain < 1_000
