"""Projection throughput: how many reservations per second the history projection folds.

Places `--reservations` reservations (with their `ReservationPlaced` events) straight into a
fresh embedded store, then runs the projection over the musicals change feed in the batches the
Cosmos DB trigger would hand it (`--batch`, default 100), and reports reservations projected per
second — to compare with the write rate of `python -m bench.reservations`:

    python -m bench.projection_throughput [--reservations 5000] [--batch 100]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from devhost.embedded.sqlite_store import SqliteDocumentStore
from shared.clock import SystemClock
from shared.domain.caller import Caller
from shared.domain.commands import PlaceReservation, RegisterMusical
from shared.handlers.musicals import MusicalDeps, MusicalDirectory, register_musical
from shared.handlers.reservations import ReservationDeps, place_reservation
from shared.projection.apply import project_changes
from shared.topology import MUSICALS


async def place_many(count: int, musical_id: str, deps: ReservationDeps) -> None:
    for i in range(count):
        await place_reservation(
            PlaceReservation(musical_id=musical_id, seats=1),
            Caller(f"customer-{i % 500}"),
            f"corr-{i}",
            None,
            deps,
        )


async def project_feed(store: SqliteDocumentStore, batch: int) -> int:
    """The musicals feed, batch after batch, as the trigger hands it over; items written."""
    position, written = 0, 0
    while changes := store.read_changes(MUSICALS.name, position, batch):
        written += await project_changes([change.document for change in changes], store)
        position = changes[-1].lsn
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reservations", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    clock = SystemClock()
    with tempfile.TemporaryDirectory(prefix="outerpark-projection-") as tmp:
        store = SqliteDocumentStore(Path(tmp))
        deps = ReservationDeps(store, store, MusicalDirectory(store), clock)
        musical = register_musical(
            RegisterMusical(title="Bench", seats=100_000, price=100), MusicalDeps(store, clock)
        )
        asyncio.run(place_many(args.reservations, musical.id, deps))
        started = time.perf_counter()
        written = asyncio.run(project_feed(store, args.batch))
        elapsed = time.perf_counter() - started
        store.close()
    print(
        f"projected {written} history items from {args.reservations} reservations in "
        f"{elapsed:.2f} s: {written / elapsed:.0f} items/s (batches of {args.batch})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
