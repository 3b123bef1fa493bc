"""The change feeds the history view is built from, each with its own checkpoint (lease prefix).

The Cosmos DB-triggered functions and the rebuild both read these, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.topology import MUSICALS, NOTICES, PAYMENTS, PERFORMANCES


@dataclass(frozen=True)
class HistoryFeed:
    container: str
    lease_prefix: str


HISTORY_FEEDS: tuple[HistoryFeed, ...] = (
    HistoryFeed(MUSICALS.name, "history-musicals"),
    HistoryFeed(PAYMENTS.name, "history-payments"),
    HistoryFeed(NOTICES.name, "history-notices"),
    HistoryFeed(PERFORMANCES.name, "history-performances"),  # seated reservations
)
