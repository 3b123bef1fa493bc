"""Rebuilding the history view: empty it, then replay every feed from its beginning.

The replay goes through `project_changes`, the code the triggers run, so a rebuilt view equals
the live one. Checkpoints are then moved to the end of what was replayed, so that a host
started afterwards carries on from there instead of replaying again (which would be harmless,
only slower).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from shared.ports import AsyncDocumentStore, ChangeFeed, DocumentStore, NotFound
from shared.projection.apply import project_changes
from shared.projection.feeds import HISTORY_FEEDS
from shared.topology import CUSTOMER_CENTER

REPLAY_BATCH = 100


class RebuildableStore(DocumentStore, AsyncDocumentStore, ChangeFeed, Protocol):
    def delete_checkpoint(self, container: str, lease_prefix: str) -> None:
        """Forget a consumer's checkpoint, so that it starts again from the beginning."""


@dataclass(frozen=True)
class RebuildReport:
    deleted: int
    replayed: dict[str, int]
    item_writes: int


def rebuild_history(store: RebuildableStore) -> RebuildReport:
    """Delete the view and its checkpoints, replay the feeds, checkpoint their ends.

    Run it while no host consumes the feeds: a running trigger would keep its own position.
    """
    deleted = _delete_view(store)
    for feed in HISTORY_FEEDS:
        store.delete_checkpoint(feed.container, feed.lease_prefix)
    replayed: dict[str, int] = {}
    written = 0
    for feed in HISTORY_FEEDS:
        position, count = 0, 0
        while changes := store.read_changes(feed.container, position, REPLAY_BATCH):
            documents = [change.document for change in changes]
            written += asyncio.run(project_changes(documents, store))
            position, count = changes[-1].lsn, count + len(changes)
        if position:
            store.set_checkpoint(feed.container, feed.lease_prefix, position)
        replayed[feed.container] = count
    return RebuildReport(deleted=deleted, replayed=replayed, item_writes=written)


def _delete_view(store: RebuildableStore) -> int:
    """Every item of the view, found through the view's own change feed (no cross-partition
    query is needed: the feed lists each live item once)."""
    deleted, position = 0, 0
    while changes := store.read_changes(CUSTOMER_CENTER.name, position, REPLAY_BATCH):
        for change in changes:
            try:
                store.delete(
                    CUSTOMER_CENTER.name, change.document["customerId"], change.document["id"]
                )
                deleted += 1
            except NotFound:
                pass
        position = changes[-1].lsn
    return deleted
