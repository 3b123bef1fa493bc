"""Every read endpoint against GET /api/health on the same host, in the same run.

Seeds a data dir per view size (the customer-center view holding `--sizes` items in all, the
measured customer 20 of them; 20 musicals in the catalog; one reservation of the customer),
then, round after round, starts `python -m devhost` on each (the saga idle: nothing is placed
during the run) and drives it with `wrk` at each of `--connections`: health first, then each
read. Every read is reported as its requests/s against health's in the same round (this
machine is shared and its speed drifts: the ratios travel, the absolute figures do not), with
its p50 and p99, and with the CPU time the HTTP host spent per request of each (the cost
ratio, health's µs ÷ the read's, is what the throughput ratio tends to when the host is the
bottleneck, and it moves less with the other loads of a shared machine); then the median of
the rounds. On the larger views only health and the history are run: the history's ratio, p99
and host CPU there, against the smallest view's, tell whether the read stays flat as the
system grows.

    python -m bench.reads [--sizes 1000 100000] [--connections 8 32] [--rounds 3] [--duration 5]

Needs `wrk` (Debian package `wrk`).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.history_latency import TARGET, seed
from bench.processes import cpu_seconds
from bench.reservations import WrkResult, run_wrk
from devhost.embedded.sqlite_store import SqliteDocumentStore
from shared.domain.models import CatalogEntry, Musical, Reservation, ReservationStatus
from shared.topology import MUSICALS
from tests.support.devhost_process import DevHost

CATALOG_SIZE = 20
HEALTH = "health"
HISTORY = "history"
SEEDED_AT = datetime(2026, 1, 1, tzinfo=UTC)
LUA_AUTH = 'wrk.headers["Authorization"] = "Bearer %s"\n'


@dataclass(frozen=True)
class Seeded:
    """What a seeded data dir holds that the reads name."""

    musical_id: str
    reservation_id: str


def seed_catalog(data_dir: Path) -> Seeded:
    """CATALOG_SIZE musicals with their catalog lines, and one reservation of TARGET."""
    store = SqliteDocumentStore(data_dir, synchronous="NORMAL")
    try:
        ids = [f"{n + 1:032x}" for n in range(CATALOG_SIZE)]
        for n, musical_id in enumerate(ids):
            at = SEEDED_AT + timedelta(seconds=n)
            store.create(
                MUSICALS.name,
                CatalogEntry(id=musical_id, title=f"Bench {n}", created_at=at).to_document(),
            )
            store.create(
                MUSICALS.name,
                Musical(
                    id=musical_id,
                    title=f"Bench {n}",
                    total_seats=1000,
                    available_seats=998,
                    price=120_000,
                    venue="Blue Square",
                    performance_at=at + timedelta(days=30),
                    created_at=at,
                ).to_document(),
            )
        reservation = Reservation(
            id=f"{ids[0]}-{0:012x}{1:016x}",
            musical_id=ids[0],
            musical_title="Bench 0",
            customer_id=TARGET,
            seats=2,
            amount=240_000,
            status=ReservationStatus.CONFIRMED,
            correlation_id="bench",
            created_at=SEEDED_AT,
            updated_at=SEEDED_AT,
        )
        store.create(MUSICALS.name, reservation.to_document())
        return Seeded(ids[0], reservation.id)
    finally:
        store.close()


def reads_of(seeded: Seeded) -> dict[str, str]:
    """Name → path under /api of every read measured."""
    return {
        HEALTH: "/health",
        HISTORY: "/history",
        "reservation": f"/reservations/{seeded.reservation_id}",
        "musicals": "/musicals",
        "musical": f"/musicals/{seeded.musical_id}",
    }


@dataclass(frozen=True)
class Measured:
    """wrk's figures, and the HTTP host's CPU µs (user + system) per request meanwhile."""

    wrk: WrkResult
    host_us: float


@dataclass(frozen=True)
class Run:
    size: int
    connections: int
    read: str
    measured: Measured
    health_measured: Measured

    @property
    def result(self) -> WrkResult:
        return self.measured.wrk

    @property
    def health(self) -> WrkResult:
        return self.health_measured.wrk

    @property
    def ratio(self) -> float:
        return self.result.requests_per_second / self.health.requests_per_second

    @property
    def cost_ratio(self) -> float:
        return self.health_measured.host_us / self.measured.host_us


def measured_wrk(url: str, load: argparse.Namespace, script: Path, host_pid: int) -> Measured:
    before = sum(cpu_seconds(host_pid))
    result = run_wrk(url, load, script)
    used = sum(cpu_seconds(host_pid)) - before
    return Measured(result, used / max(result.requests, 1) * 1e6)


def measure_host(
    host: DevHost, size: int, reads: dict[str, str], args: argparse.Namespace, tmp: Path
) -> list[Run]:
    """Health, then each read, at each connection count, on one running host."""
    script = tmp / "auth.lua"
    script.write_text(LUA_AUTH % host.token(TARGET))
    base = f"http://127.0.0.1:{host.port}/api"
    warm = argparse.Namespace(threads=args.threads, connections=8, duration=1)
    for path in reads.values():
        run_wrk(f"{base}{path}", warm, script)
    assert host.process is not None
    pid = host.process.pid
    runs = []
    for connections in args.connections:
        load = argparse.Namespace(
            threads=args.threads, connections=connections, duration=args.duration
        )
        health = measured_wrk(f"{base}{reads[HEALTH]}", load, script, pid)
        for name, path in reads.items():
            if name == HEALTH:
                continue
            measured = measured_wrk(f"{base}{path}", load, script, pid)
            runs.append(Run(size, connections, name, measured, health))
    return runs


def line(run: Run) -> str:
    result, health = run.result, run.health
    return (
        f"{run.size:>7} items  c{run.connections:<3} {run.read:<12}"
        f" {result.requests_per_second:>7.0f} req/s (health {health.requests_per_second:>6.0f})"
        f"  ratio {run.ratio:5.2f}  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
        f"  host CPU {run.measured.host_us:4.0f} µs/request"
        f" (health {run.health_measured.host_us:3.0f}, cost ratio {run.cost_ratio:4.2f})"
        f"  errors {result.errors + health.errors}"
    )


def summary(runs: list[Run], sizes: list[int]) -> list[str]:
    """The median over rounds of each (size, connections, read), and the history's flatness."""
    grouped: dict[tuple[int, int, str], list[Run]] = defaultdict(list)
    for run in runs:
        grouped[(run.size, run.connections, run.read)].append(run)
    lines = []
    medians: dict[tuple[int, int, str], tuple[float, float, float]] = {}
    for (size, connections, read), taken in grouped.items():
        ratio = statistics.median(r.ratio for r in taken)
        p99 = statistics.median(r.result.p99_ms for r in taken)
        rps = statistics.median(r.result.requests_per_second for r in taken)
        health = statistics.median(r.health.requests_per_second for r in taken)
        cost_ratio = statistics.median(r.cost_ratio for r in taken)
        host_us = statistics.median(r.measured.host_us for r in taken)
        medians[(size, connections, read)] = (ratio, p99, host_us)
        lines.append(
            f"{size:>7} items  c{connections:<3} {read:<12} median of {len(taken)}:"
            f" ratio {ratio:5.2f} ({rps:.0f} vs health {health:.0f} req/s), p99 {p99:.2f} ms"
            f" (rounds: {', '.join(f'{r.ratio:.2f}' for r in taken)});"
            f" host CPU {host_us:.0f} µs/request, cost ratio {cost_ratio:.2f}"
        )
    smallest = sizes[0]
    for size in sizes[1:]:
        for connections in sorted({c for (_, c, _) in medians}):
            small = medians.get((smallest, connections, HISTORY))
            large = medians.get((size, connections, HISTORY))
            if small is None or large is None:
                continue
            lines.append(
                f"history flatness c{connections}, {size} against {smallest} items:"
                f" ratio {large[0] / small[0]:.2f}, p99 {large[1] / small[1]:.2f}"
                " (bar: both within 0.75..1.25);"
                f" host CPU a request {large[2] / small[2]:.2f}"
            )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000])
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 2
    print(
        f"wrk -t{args.threads} -d{args.duration}s at {args.connections} connections,"
        f" {args.rounds} round(s), a fresh host each; the machine is shared: read the ratios"
    )
    with tempfile.TemporaryDirectory(prefix="outerpark-reads-") as scratch:
        tmp = Path(scratch)
        seeded_dirs: list[tuple[int, Path, Seeded]] = []
        for size in args.sizes:
            data_dir = tmp / f"view-{size}" / "data"
            started = time.perf_counter()
            seed(data_dir, size)
            seeded = seed_catalog(data_dir)
            print(f"{size:>7} history items seeded in {time.perf_counter() - started:.1f} s")
            seeded_dirs.append((size, data_dir, seeded))
        runs: list[Run] = []
        for number in range(1, args.rounds + 1):
            print(f"round {number}")
            for index, (size, data_dir, seeded) in enumerate(seeded_dirs):
                reads = reads_of(seeded)
                if index > 0:
                    reads = {HEALTH: reads[HEALTH], HISTORY: reads[HISTORY]}
                host = DevHost(data_dir).start()
                try:
                    measured = measure_host(host, size, reads, args, tmp)
                finally:
                    host.close()
                for run in measured:
                    print(f"  {line(run)}", flush=True)
                runs.extend(measured)
        print(
            "medians (bars: history >= 0.50 at c8 and c32 with p99 < 20 ms at c8;"
            " other reads >= 0.60)"
        )
        print("\n".join(f"  {text}" for text in summary(runs, args.sizes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
