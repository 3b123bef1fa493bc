"""Which customers' seat holdings this process has seen in the store.

A capped musical counts each customer's seats in a holding item: the customer's first
reservation there creates it, the next ones patch it, in the placing batch either way. Guessing
wrong costs a batch (the store answers Conflict or NotFound and the use case tries again with
the other operation), so each process remembers the holdings it has written or met: a first
booking creates at once, a repeat patches at once. What is remembered is a hint, never a fact
the outcome depends on: a stale entry only costs that one extra batch.
"""

from __future__ import annotations

from collections import OrderedDict

HoldingKey = tuple[str, str]
"""(musical id, customer id)"""


class KnownHoldings:
    """A bounded set of holdings known to exist; the least recently used are forgotten first."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._known: OrderedDict[HoldingKey, None] = OrderedDict()

    def __contains__(self, key: HoldingKey) -> bool:
        if key not in self._known:
            return False
        self._known.move_to_end(key)
        return True

    def learn(self, key: HoldingKey, exists: bool) -> None:
        if not exists:
            self._known.pop(key, None)
            return
        self._known[key] = None
        self._known.move_to_end(key)
        if len(self._known) > self._capacity:
            self._known.popitem(last=False)
