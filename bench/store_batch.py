"""Reservation-shaped batches per second on the SQLite store, on 1 thread and on 32 threads.

Each batch is what POST /reservations writes: a conditional Patch of the musical's seats, the
reservation and its outbox event, in the musical's partition. Reservations spread over a few
musicals, as on a busy day.

    .venv/bin/python -m bench.store_batch [--batches 3000] [--threads 1 32] [--synchronous FULL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from devhost.embedded.sqlite_store import SqliteDocumentStore
from shared.domain.events import OUTBOX_TTL_SECONDS
from shared.ports import Condition, Create, Incr, Patch
from shared.topology import MUSICALS

MUSICAL_COUNT = 8


def reservation_batch(musical_id: str) -> list:
    reservation_id = uuid.uuid4().hex
    return [
        Patch(musical_id, [Incr("availableSeats", -1)], [Condition("availableSeats", ">=", 1)]),
        Create(
            {
                "id": reservation_id,
                "musicalId": musical_id,
                "type": "reservation",
                "customerId": "c1",
                "seats": 1,
                "amount": 50_000,
                "status": "Reserved",
                "createdAt": "2026-01-01T00:00:00Z",
            }
        ),
        Create(
            {
                "id": f"evt-{reservation_id}",
                "musicalId": musical_id,
                "type": "outbox",
                "eventType": "ReservationPlaced",
                "payload": {"reservationId": reservation_id, "seats": 1, "amount": 50_000},
                "ttl": OUTBOX_TTL_SECONDS,
            }
        ),
    ]


def run(store: SqliteDocumentStore, batches: int, threads: int) -> None:
    latencies: list[float] = []
    lock = threading.Lock()

    def one(n: int) -> None:
        musical_id = f"m{n % MUSICAL_COUNT}"
        started = time.perf_counter()
        store.batch(MUSICALS.name, musical_id, reservation_batch(musical_id))
        elapsed = time.perf_counter() - started
        with lock:
            latencies.append(elapsed)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(batches)))
    wall = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"threads={threads:>3}  batches={batches}  {batches / wall:8.0f} batches/s"
        f"  p50={cuts[49] * 1000:6.2f} ms  p99={cuts[98] * 1000:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=3000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteDocumentStore(Path(directory), synchronous=args.synchronous)
        for n in range(MUSICAL_COUNT):
            store.create(
                MUSICALS.name, {"id": f"m{n}", "musicalId": f"m{n}", "availableSeats": 10**9}
            )
        print(f"synchronous={args.synchronous}")
        for threads in args.threads:
            run(store, args.batches, threads)
        store.close()


if __name__ == "__main__":
    main()
