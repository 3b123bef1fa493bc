"""A customer's history, read from the customer-center view (CQRS: never the write side).

One query of one partition (the customer's): newest first, keyset-paged. Items whose
reservation has not been projected yet (only a payment or notice of it has) are left out
until it is: without it they have no title, seats or place in the order.

Async, on the event loop, and served as stored: the projection validated each item when it
wrote it, in the answer's own JSON form (its document is the HistoryItem plus its keys), so the
store hands over each item's answer fields as JSON text and the page is joined from those texts:
one query, nothing decoded, validated or encoded per item.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from shared.domain.caller import Caller
from shared.handlers.paging import page_json, query_json_page
from shared.ports import AsyncDocumentStore, Condition, OrderBy
from shared.projection.history_item import API_FIELDS
from shared.topology import CUSTOMER_CENTER

NEWEST_FIRST = (OrderBy("createdAt", descending=True), OrderBy("id"))
# `musicalTitle` is a string once a reservation fact was folded in; a condition on a missing or
# null field never holds.
PLACED_ONLY = (Condition("musicalTitle", ">=", ""),)
_ENCODE_JSON = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(frozen=True)
class HistoryPage:
    customer_id: str
    items: list[str]  # each a HistoryItem (openapi.yaml), as JSON text
    continuation_token: str | None

    def to_json(self) -> str:
        """The answer of GET /history, joined from the items' texts."""
        head = f'"customerId":{_ENCODE_JSON(self.customer_id)},'
        return page_json(self.items, self.continuation_token, head)


async def list_history(
    caller: Caller, store: AsyncDocumentStore, limit: int, continuation: str | None
) -> HistoryPage:
    page = await query_json_page(
        store,
        CUSTOMER_CENTER.name,
        caller.customer_id,
        API_FIELDS,
        PLACED_ONLY,
        NEWEST_FIRST,
        limit,
        continuation,
    )
    return HistoryPage(caller.customer_id, page.items, page.continuation)
