"""GET /api/history latency for one customer, with 1,000 and with 100,000 items in the view.

The customercenter container is seeded directly (items spread over many customers, the
measured customer holding 20), then the customer's first page is requested again and again:
over HTTP against `python -m devhost` (client-side latency, one connection), and in process
through the handler and the store (what the view itself costs). The sizes are measured in
alternating blocks, so that both see the same background load. The CQRS claim is that the
latency does not grow with the size of the view: the two p99s should be within 25%.

    .venv/bin/python -m bench.history_latency [--sizes 1000 100000] [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack, closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from devhost.embedded.sqlite_store import SqliteDocumentStore
from shared.domain.caller import Caller
from shared.domain.models import NoticeKind, PaymentStatus, ReservationStatus
from shared.handlers.history import list_history
from shared.ports import Create
from shared.projection.facts import NoticeEntry, TimelineStep
from shared.projection.history_item import HistoryItem
from shared.topology import CUSTOMER_CENTER
from tests.support.devhost_process import DevHost

TARGET = "bench-target"
TARGET_ITEMS = 20
ITEMS_PER_OTHER_CUSTOMER = 10
START = datetime(2026, 1, 1, tzinfo=UTC)


def history_item(customer_id: str, number: int) -> dict:
    placed = START + timedelta(seconds=number)
    approved = placed + timedelta(milliseconds=300)
    return HistoryItem(
        id=f"{number:032x}-{number:016x}",
        customer_id=customer_id,
        reservation_id=f"{number:032x}-{number:016x}",
        musical_id=f"{number % 50:032x}",
        musical_title=f"Musical {number % 50}",
        seats=2,
        amount=240_000,
        reservation_status=ReservationStatus.CONFIRMED,
        payment_status=PaymentStatus.APPROVED,
        notices=[
            NoticeEntry(
                kind=NoticeKind.PAYMENT_APPROVED.value,
                message="Your payment of 240000 for the show x2 was approved. Enjoy the show!",
                sent_at=approved,
            )
        ],
        timeline=[
            TimelineStep(type="ReservationPlaced", at=placed),
            TimelineStep(type="PaymentApproved", at=approved),
            TimelineStep(type="ReservationConfirmed", at=approved),
            TimelineStep(type="NoticeSent", at=approved, kind=NoticeKind.PAYMENT_APPROVED.value),
        ],
        created_at=placed,
        updated_at=approved,
    ).to_document()


def seed(data_dir: Path, size: int) -> None:
    """`size` items: TARGET_ITEMS for the measured customer, the rest 10 per customer."""
    store = SqliteDocumentStore(data_dir, synchronous="NORMAL")
    try:
        store.batch(
            CUSTOMER_CENTER.name,
            TARGET,
            [Create(history_item(TARGET, n)) for n in range(TARGET_ITEMS)],
        )
        for first in range(TARGET_ITEMS, size, ITEMS_PER_OTHER_CUSTOMER):
            customer = f"customer-{first // ITEMS_PER_OTHER_CUSTOMER}"
            numbers = range(first, min(first + ITEMS_PER_OTHER_CUSTOMER, size))
            store.batch(
                CUSTOMER_CENTER.name, customer, [Create(history_item(customer, n)) for n in numbers]
            )
    finally:
        store.close()


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[98]


def interleaved(
    calls: list[Callable[[], None]], requests: int, block: int = 50
) -> list[list[float]]:
    """Latencies (ms) of each call, taken in alternating blocks so that every view size sees
    the same background load (this machine is shared: absolute numbers are noisy)."""
    for call in calls:
        for _ in range(block):
            call()
    samples: list[list[float]] = [[] for _ in calls]
    while len(samples[0]) < requests:
        for call, taken in zip(calls, samples, strict=True):
            for _ in range(block):
                started = time.perf_counter()
                call()
                taken.append((time.perf_counter() - started) * 1000)
    return samples


def direct_call(store: SqliteDocumentStore, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    caller = Caller(TARGET)

    def call() -> None:
        page = loop.run_until_complete(list_history(caller, store, 50, None))
        assert len(page.items) == TARGET_ITEMS
        page.to_json()

    return call


def http_call(client: httpx.Client, token: str) -> Callable[[], None]:
    headers = {"Authorization": f"Bearer {token}"}

    def call() -> None:
        response = client.get("/history", headers=headers)
        assert response.status_code == 200, response.text
        assert len(response.json()["items"]) == TARGET_ITEMS

    return call


def report(sizes: list[int], mode: str, samples: list[list[float]]) -> None:
    p99s = []
    for size, taken in zip(sizes, samples, strict=True):
        p50, p99 = percentiles(taken)
        p99s.append(p99)
        print(f"{mode:<6} {size:>7} items  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
    print(f"{mode:<6} p99 ratio, largest / smallest view: {p99s[-1] / p99s[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--requests", type=int, default=1_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as running:
        data_dirs = []
        for size in args.sizes:
            data_dir = Path(scratch) / f"view-{size}" / "data"
            started = time.perf_counter()
            seed(data_dir, size)
            print(f"{size:>7} items seeded in {time.perf_counter() - started:.1f} s")
            data_dirs.append(data_dir)
        print(f"load average before measuring: {os.getloadavg()}")

        stores = [running.enter_context(closing(SqliteDocumentStore(d))) for d in data_dirs]
        loop = running.enter_context(closing(asyncio.new_event_loop()))
        direct = interleaved([direct_call(store, loop) for store in stores], args.requests)
        report(args.sizes, "direct", direct)

        calls = []
        for data_dir in data_dirs:
            host = running.enter_context(closing(DevHost(data_dir).start()))
            calls.append(http_call(host.client, host.token(TARGET)))
        report(args.sizes, "http", interleaved(calls, args.requests))
        print(f"load average after measuring: {os.getloadavg()}")


if __name__ == "__main__":
    main()
