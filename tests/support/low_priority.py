"""The store's low-priority policy (devhost.embedded.group_commit's LOW_PRIORITY_*) set for one
test, at scales a test can time: set it before the store is built."""

from __future__ import annotations

import pytest

from devhost.embedded import group_commit


def low_priority_policy(
    monkeypatch: pytest.MonkeyPatch,
    *,
    trickle_seconds: float,
    busy_writes: int,
    busy_seconds: float,
) -> None:
    """Requests count as busy once `busy_writes` of their writes came within `busy_seconds`;
    meanwhile one background write gets through every `trickle_seconds`."""
    monkeypatch.setattr(group_commit, "LOW_PRIORITY_TRICKLE_SECONDS", trickle_seconds)
    monkeypatch.setattr(group_commit, "LOW_PRIORITY_BUSY_WRITES", busy_writes)
    monkeypatch.setattr(group_commit, "LOW_PRIORITY_BUSY_SECONDS", busy_seconds)
