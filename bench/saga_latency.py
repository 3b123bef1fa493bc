"""Saga latency: from `POST /api/reservations` to `Confirmed` with its notice, one at a time.

Starts `python -m devhost` on a fresh data dir with its local gateway simulator (default
latency 20 ms), places `--count` reservations one after another and, for each, polls until the
reservation is `Confirmed` and its approval notice shows in `GET /api/history` (so the figure
covers relay → payment → gateway → relay → reservation and notice → projection):

    python -m bench.saga_latency [--count 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.support.devhost_process import DevHost, auth

POLL_SECONDS = 0.002


def confirmed_with_notice(host: DevHost, headers: dict[str, str], reservation_id: str) -> bool:
    status = host.client.get(f"/reservations/{reservation_id}", headers=headers).json()["status"]
    if status != "Confirmed":
        return False
    items = host.client.get("/history", headers=headers, params={"limit": 5}).json()["items"]
    return any(i["reservationId"] == reservation_id and i["notices"] for i in items)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="outerpark-saga-") as tmp:
        host = DevHost(Path(tmp) / "data").start()
        try:
            admin = auth(host.token("bench-admin", admin=True))
            customer = auth(host.token("bench-customer"))
            musical = host.client.post(
                "/musicals", json={"title": "Saga", "seats": 1000, "price": 100}, headers=admin
            ).json()["id"]
            samples = []
            for _ in range(args.count):
                started = time.perf_counter()
                reservation = host.client.post(
                    "/reservations", json={"musicalId": musical, "seats": 1}, headers=customer
                ).json()["id"]
                while not confirmed_with_notice(host, customer, reservation):
                    time.sleep(POLL_SECONDS)
                samples.append((time.perf_counter() - started) * 1000)
        finally:
            host.close()
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(f"{args.count} sequential reservations, POST → Confirmed with notice in history")
    print(
        f"p50 {statistics.median(samples):.0f} ms   p99 {p99:.0f} ms   "
        f"min {ordered[0]:.0f} ms   max {ordered[-1]:.0f} ms   (bar: p50 < 100 ms, p99 < 1 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
