"""Applying one change-feed batch to the history view.

The batch's facts are grouped by reservation, so each touched item costs one point read and at
most one write, however many of its facts the batch holds. A write is conditional (create on
first sight, otherwise replace If-Match the ETag read): the three feeds are consumed
concurrently and may touch the same item, and a lost race re-reads and folds again. An item
the facts do not change is not written at all, so a redelivered batch costs reads only.

The items of a batch are folded concurrently: one after the other, each write waited for its
own commit (Cosmos DB: a round trip; SQLite: a group commit), and the view fell behind the saga.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from shared.optimistic import retry_on_race_async
from shared.ports import AsyncDocumentStore, Conflict, NotFound, PreconditionFailed
from shared.projection.facts import HistoryFact, facts_of
from shared.projection.history_item import HistoryItem
from shared.topology import CUSTOMER_CENTER


async def project_changes(documents: Iterable[Mapping[str, Any]], store: AsyncDocumentStore) -> int:
    """Fold a batch of changed documents into the view; returns how many items were written.

    Every item is folded even when another fails; then the first failure is raised, so that
    the batch is retried (what was folded already is not written again)."""
    by_item: dict[tuple[str, str], list[HistoryFact]] = defaultdict(list)
    for document in documents:
        for fact in facts_of(document):
            by_item[(fact.customer_id, fact.reservation_id)].append(fact)
    outcomes = await asyncio.gather(
        *(_fold_into_item(facts, store) for facts in by_item.values()), return_exceptions=True
    )
    changed = 0
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        changed += outcome
    return changed


async def _fold_into_item(facts: list[HistoryFact], store: AsyncDocumentStore) -> bool:
    customer_id, reservation_id = facts[0].customer_id, facts[0].reservation_id

    async def fold() -> bool:
        current = await _read(customer_id, reservation_id, store)
        if current is None:
            await store.create_async(
                CUSTOMER_CENTER.name, HistoryItem.from_facts(facts).to_document()
            )
            return True
        folded = current.with_facts(facts).to_document()
        if folded == current.to_document():
            return False
        await store.replace_async(CUSTOMER_CENTER.name, folded, if_match=current.etag)
        return True

    # A lost race shows as Conflict (created meanwhile), PreconditionFailed or NotFound.
    return await retry_on_race_async(
        fold, f"history item {reservation_id}", (Conflict, PreconditionFailed, NotFound)
    )


async def _read(
    customer_id: str, reservation_id: str, store: AsyncDocumentStore
) -> HistoryItem | None:
    try:
        document = await store.read_async(CUSTOMER_CENTER.name, customer_id, reservation_id)
    except NotFound:
        return None
    return HistoryItem.from_document(document)
