"""A customer's history, read from the customer-center view (CQRS: never the write side).

One query of one partition (the customer's): newest first, keyset-paged. Items whose
reservation has not been projected yet (only a payment or notice of it has) are left out
until it is: without it they have no title, seats or place in the order.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.caller import Caller
from shared.handlers.paging import query_page
from shared.ports import Condition, DocumentStore, OrderBy
from shared.projection.history_item import HistoryItem
from shared.topology import CUSTOMER_CENTER

NEWEST_FIRST = (OrderBy("createdAt", descending=True), OrderBy("id"))
# `musicalTitle` is a string once a reservation fact was folded in; a condition on a missing or
# null field never holds.
PLACED_ONLY = (Condition("musicalTitle", ">=", ""),)


@dataclass(frozen=True)
class HistoryPage:
    customer_id: str
    items: list[HistoryItem]
    continuation_token: str | None

    def to_api(self) -> dict:
        return {
            "customerId": self.customer_id,
            "items": [item.to_api() for item in self.items],
            "continuationToken": self.continuation_token,
        }


def list_history(
    caller: Caller, store: DocumentStore, limit: int, continuation: str | None
) -> HistoryPage:
    page = query_page(
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
        items=[HistoryItem.from_document(document) for document in page.items],
        continuation_token=page.continuation,
    )
