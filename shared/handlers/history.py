"""A customer's history, read from the customer-center view (CQRS: never the write side).

One query of one partition (the customer's): newest first, keyset-paged. Items whose
reservation has not been projected yet (only a payment or notice of it has) are left out
until it is: without it they have no title, seats or place in the order.

Async, on the event loop, and served as stored: the projection validated each item when it
wrote it, and the stored document is the answer's item plus its keys (`served_item`), so a page
costs one query and a copy of each item's fields, never a model per item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.domain.caller import Caller
from shared.handlers.paging import query_page
from shared.ports import AsyncDocumentStore, Condition, OrderBy
from shared.projection.history_item import served_item
from shared.topology import CUSTOMER_CENTER

NEWEST_FIRST = (OrderBy("createdAt", descending=True), OrderBy("id"))
# `musicalTitle` is a string once a reservation fact was folded in; a condition on a missing or
# null field never holds.
PLACED_ONLY = (Condition("musicalTitle", ">=", ""),)


@dataclass(frozen=True)
class HistoryPage:
    customer_id: str
    items: list[dict[str, Any]]  # CONTRACT §3 HistoryItems, as served
    continuation_token: str | None

    def to_api(self) -> dict[str, Any]:
        return {
            "customerId": self.customer_id,
            "items": self.items,
            "continuationToken": self.continuation_token,
        }


async def list_history(
    caller: Caller, store: AsyncDocumentStore, limit: int, continuation: str | None
) -> HistoryPage:
    page = await query_page(
        store,
        CUSTOMER_CENTER.name,
        caller.customer_id,
        PLACED_ONLY,
        NEWEST_FIRST,
        limit,
        continuation,
    )
    return HistoryPage(
        customer_id=caller.customer_id,
        items=[served_item(document) for document in page.items],
        continuation_token=page.continuation,
    )
