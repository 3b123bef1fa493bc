"""The handlers' dependencies for use-case tests, as shared.bootstrap builds them."""

from __future__ import annotations

from typing import Any

from shared.handlers.musicals import MusicalDirectory
from shared.handlers.performances import PerformanceDirectory
from shared.handlers.reservations import ReservationDeps
from shared.handlers.seated_reservations import SeatedDeps
from shared.ports import AsyncDocumentStore, Clock, DocumentStore


def reservation_deps(store: DocumentStore, clock: Clock, **options: Any) -> ReservationDeps:
    """`store` must implement both store ports (the memory and SQLite stores do)."""
    assert isinstance(store, AsyncDocumentStore)
    return ReservationDeps(
        store=store, async_store=store, musicals=MusicalDirectory(store), clock=clock, **options
    )


def seated_deps(
    store: DocumentStore, clock: Clock, performances: PerformanceDirectory | None = None
) -> SeatedDeps:
    """`store` must implement both store ports (the memory and SQLite stores do)."""
    assert isinstance(store, AsyncDocumentStore)
    return SeatedDeps(
        store=store,
        async_store=store,
        performances=performances or PerformanceDirectory(),
        clock=clock,
    )
