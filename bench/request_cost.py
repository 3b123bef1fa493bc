"""What one request costs the host: CPU time per request, health against reservations, for
each of devhost's processes (the HTTP host, the store service, the two trigger hosts, the
gateway simulator) and for the load generator.

Starts `python -m devhost` on a fresh data dir, drives GET /api/health and then
POST /api/reservations with `wrk` (as `bench.reservations` does), and reads each process's user
and system CPU time from /proc before and after each run:

    python -m bench.request_cost [--duration 10] [--connections 32] [--saga-off]

`--saga-off` hosts `bench/http_only_app.py` (no background functions), so the figures are the
request's own costs. The HTTP host runs on one core: the ratio of its two costs bounds the ratio
of the two throughputs that `bench.reservations` measures, and the other processes share the
second core with the load generator. Linux only (/proc); needs `wrk`.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.processes import CpuUse, snapshot, used_between
from bench.reservations import (
    WrkResult,
    add_wrk_arguments,
    reservation_load,
    run_wrk,
    warm_up,
)
from tests.support.devhost_process import DevHost

HTTP_ONLY_APP = Path(__file__).with_name("http_only_app.py")


@dataclass(frozen=True)
class Cost:
    wrk: WrkResult
    cpu: CpuUse
    load_generator_us: float

    @property
    def http_host_us(self) -> float:
        return self.cpu.per_request_us(self.wrk.requests)["http"]

    def line(self, name: str) -> str:
        return (
            f"{name:<22} {self.wrk.requests_per_second:>7.0f} req/s   "
            f"{self.cpu.line(self.wrk.requests)}, wrk {self.load_generator_us:.0f}"
        )


def measure(pid: int, url: str, args: argparse.Namespace, script: Path | None = None) -> Cost:
    before = snapshot(pid)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = run_wrk(url, args, script)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = snapshot(pid)
    wrk_seconds = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    return Cost(
        wrk=result,
        cpu=used_between(before, after),
        load_generator_us=wrk_seconds / max(result.requests, 1) * 1e6,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_wrk_arguments(parser)
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
    ratio = reserve.http_host_us / health.http_host_us
    print(f"a reservation costs the HTTP host {ratio:.2f} times a health request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
