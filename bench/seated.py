"""Seated reservations under load, on a fresh `python -m devhost`.

One performance of 20,000 seats (20 sections of 10 rows x 100 seats, grades VIP/R/S/A). For
`--duration` seconds each, at `--connections` concurrent connections (one asyncio client):
- GET /health (the host's ceiling on this machine);
- best-available reservations (2 seats of a random grade, a customer per request);
- explicit-seat reservations (2 adjacent seats picked at random; a 409 seats-taken counts);
then one section's listing (1,000 seats) `--listings` times. It prints requests/s, the ratio
to health and p99 of each, and checks that no seat was sold twice: every seat id of every 201
is distinct, and the sections' counters agree with the seats listed as held.

    .venv/bin/python -m bench.seated --duration 5 --connections 32
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.support.devhost_process import DevHost, auth

GRADES = {"VIP": 150_000, "R": 120_000, "S": 90_000, "A": 60_000}
SECTIONS = [
    {"id": f"S{n:02d}", "grade": list(GRADES)[n % 4], "rows": 10, "seatsPerRow": 100}
    for n in range(20)
]


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] * 1000 if len(samples) > 1 else 0.0


async def drive(
    client: httpx.AsyncClient, connections: int, duration: float, request
) -> tuple[float, list[float], Counter]:
    """Run `request(client, n)` on `connections` tasks for `duration` s: rate, latencies."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    deadline = time.perf_counter() + duration
    counter = iter(range(10**9))

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = await request(client, next(counter))
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return len(latencies) / (time.perf_counter() - started), latencies, statuses


async def run(args: argparse.Namespace, host: DevHost) -> None:
    admin = auth(host.token("boss", admin=True))
    tokens = [auth(host.token(f"fan-{n}")) for n in range(200)]
    starts = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    limits = httpx.Limits(max_connections=args.connections)
    async with httpx.AsyncClient(base_url=host.base_url, timeout=30, limits=limits) as client:
        created = await client.post(
            "/musicals",
            json={
                "title": "Bench",
                "grades": GRADES,
                "sections": SECTIONS,
                "performances": [starts],
            },
            headers=admin,
        )
        created.raise_for_status()
        performance = created.json()["performances"][0]["id"]
        sold: list[str] = []

        async def health(c: httpx.AsyncClient, _: int) -> httpx.Response:
            return await c.get("/health")

        async def best(c: httpx.AsyncClient, n: int) -> httpx.Response:
            grade = random.choice(list(GRADES))
            body = {"performanceId": performance, "grade": grade, "seats": 2}
            response = await c.post("/reservations", json=body, headers=tokens[n % 200])
            if response.status_code == 201:
                sold.extend(response.json()["seatIds"])
            return response

        async def explicit(c: httpx.AsyncClient, n: int) -> httpx.Response:
            section = random.choice(SECTIONS)["id"]
            row, number = random.randint(1, 10), random.randint(1, 99)
            seat_ids = [f"{section}-{row}-{number}", f"{section}-{row}-{number + 1}"]
            body = {"performanceId": performance, "seatIds": seat_ids}
            response = await c.post("/reservations", json=body, headers=tokens[n % 200])
            if response.status_code == 201:
                sold.extend(response.json()["seatIds"])
            return response

        async def listing(c: httpx.AsyncClient, _: int) -> httpx.Response:
            return await c.get(f"/performances/{performance}/seats", params={"section": "S00"})

        rate_health, lat, _ = await drive(client, args.connections, args.duration, health)
        print(f"health          {rate_health:8.0f} req/s  p99 {p99(lat):6.1f} ms")
        for name, request in (("best available", best), ("explicit seats", explicit)):
            rate, lat, statuses = await drive(client, args.connections, args.duration, request)
            print(
                f"{name:15} {rate:8.0f} req/s  ratio {rate / rate_health:4.2f}  "
                f"p99 {p99(lat):6.1f} ms  statuses {dict(statuses)}"
            )
        rate, lat, statuses = await drive(client, 1, args.listing_seconds, listing)
        print(f"listing 1,000   {rate:8.0f} req/s  p99 {p99(lat):6.1f} ms  (one connection)")

        held = 0
        for section in SECTIONS:
            seats = await client.get(
                f"/performances/{performance}/seats", params={"section": section["id"]}
            )
            held += sum(not seat["available"] for seat in seats.json()["seats"])
        view = (await client.get(f"/performances/{performance}")).json()
        double = len(sold) - len(set(sold))
        print(
            f"sold {len(sold)} seats, {double} sold twice; listed as held {held}; "
            f"counters say {view['totalSeats'] - view['availableSeats']} held"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--listing-seconds", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        host = DevHost(Path(directory) / "data").start()
        try:
            asyncio.run(run(args, host))
        finally:
            host.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
