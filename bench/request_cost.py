"""What one request costs the host: server CPU time per request, health against reservations.

Starts `python -m devhost` on a fresh data dir, drives GET /api/health and then
POST /api/reservations with `wrk` (as `bench.reservations` does), and reads the host
process's user and system CPU time from /proc before and after each run:

    python -m bench.request_cost [--duration 10] [--connections 32] [--saga-off]

`--saga-off` hosts `bench/http_only_app.py` (no background functions), so the figure is the
request's own cost. The ratio of the two costs bounds the ratio of the two throughputs that
`bench.reservations` measures. Linux only (/proc); needs `wrk`.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.reservations import WrkResult, reservation_load, run_wrk, warm_up
from tests.support.devhost_process import DevHost

HTTP_ONLY_APP = Path(__file__).with_name("http_only_app.py")


@dataclass(frozen=True)
class Cost:
    wrk: WrkResult
    user_us: float
    system_us: float
    load_generator_us: float

    def line(self, name: str) -> str:
        return (
            f"{name:<22} {self.wrk.requests_per_second:>7.0f} req/s   server CPU per request:"
            f" {self.user_us + self.system_us:5.0f} µs ({self.user_us:.0f} user +"
            f" {self.system_us:.0f} system)   wrk {self.load_generator_us:.0f} µs"
        )


def process_cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of `pid` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def measure(pid: int, url: str, args: argparse.Namespace, script: Path | None = None) -> Cost:
    user_before, system_before = process_cpu_seconds(pid)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = run_wrk(url, args, script)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user_after, system_after = process_cpu_seconds(pid)
    per_request = 1_000_000 / max(result.requests, 1)
    wrk_seconds = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    return Cost(
        wrk=result,
        user_us=(user_after - user_before) * per_request,
        system_us=(system_after - system_before) * per_request,
        load_generator_us=wrk_seconds * per_request,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--musicals", type=int, default=8)
    parser.add_argument("--saga-off", action="store_true", help="host only the HTTP functions")
    args = parser.parse_args()
    if shutil.which("wrk") is None or not Path("/proc/self/stat").exists():
        print("needs wrk (apt-get install -y wrk) and Linux's /proc", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="outerpark-cost-") as tmp:
        extra = ["--app", str(HTTP_ONLY_APP)] if args.saga_off else []
        host = DevHost(Path(tmp) / "data", args=extra).start()
        try:
            assert host.process is not None
            _, script = reservation_load(host, Path(tmp), args.musicals)
            base = f"http://127.0.0.1:{host.port}/api"
            warm_up(f"{base}/health", args)
            health = measure(host.process.pid, f"{base}/health", args)
            reserve = measure(host.process.pid, f"{base}/reservations", args, script)
        finally:
            host.close()

    saga = "off" if args.saga_off else "running behind"
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, saga {saga}")
    print(health.line("GET /api/health"))
    print(reserve.line("POST /api/reservations"))
    health_cost = health.user_us + health.system_us
    reserve_cost = reserve.user_us + reserve.system_us
    print(f"a reservation costs the host {reserve_cost / health_cost:.1f} times a health request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
