"""Core benchmark: POST /api/reservations against GET /api/health, same host, same run.

Starts `python -m devhost` on a fresh data dir (with its local payment gateway simulator, so
the whole saga runs behind the load as it would), then drives it with `wrk` at 32 connections,
health first, then reservations:

    python -m bench.reservations [--duration 10] [--connections 32] [--threads 2] [--rounds 3]
                                 [--max-seats-per-customer 100] [--customers 200]

The musicals have a `maxSeatsPerCustomer` (100 unless `--max-seats-per-customer 0`), so every
reservation takes its seats in the customer's holding too (openapi.yaml), spread over
`--customers` customers so that none of them reaches the cap during a run (room for
musicals * customers * cap = 160,000 reservations by default, several times what a round
places; with 50 customers, a round at 3,000 reservations/s ran some of them into the cap). A
customer's first reservation in a musical creates its holding (one more batch), so short runs
pay that more often than long ones.

Each round does that on a fresh host, and prints requests/s and latency percentiles of both
endpoints, their ratio, the error count, the seats held against the 201s answered, the CPU time
each of devhost's processes spent per reservation, and the HTTP host's CPU per health request
beside its CPU per reservation (their ratio is what the throughput ratio would be were the host,
which runs on one core, as busy in both runs), and how much CPU time the hypervisor took from
this VM during each run (steal). Then the median of the rounds' ratios: on this VM one round's
ratio moves by up to ±10 points with the machine's speed, which drifts within seconds (steal is
one visible part of it), so one round alone says little (all of them are printed). After the
last round, the saga: its backlog once the load stopped (bench.saga_backlog: when its stages
stopped growing), how long until the last reservation reached `Confirmed` (the drain), and when
the customer history showed every reservation Confirmed with its notice. Needs `wrk` (Debian
package `wrk`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.processes import CpuUse, snapshot, steal_seconds, used_between
from bench.saga_backlog import POLL_SECONDS, Drain, follow_drain, in_history
from tests.support.devhost_process import DevHost, auth

DRAIN_TIMEOUT_SECONDS = 300

# Numbers each wrk thread (`number`, from 1). Each thread is a Lua state of its own, its random
# numbers seeded alike: unseeded by `number`, every thread sends the same sequence of requests.
LUA_NUMBERED_THREADS = """
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("number", threads)
end
"""

LUA_RESERVE = """
local ids = {%(ids)s}
local tokens = {%(tokens)s}
-- Built once, one per (musical, customer): formatting each request cost wrk ~6 us more CPU per
-- request (~54 against ~48 us), on the cores that the host under test shares with it.
local requests = {}
for _, token in ipairs(tokens) do
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
  for _, id in ipairs(ids) do
    local body = '{"musicalId":"' .. id .. '","seats":1}'
    requests[#requests + 1] = wrk.format("POST", "/api/reservations", headers, body)
  end
end
%(numbered)s
function init(args)
  math.randomseed(number)
end

request = function()
  return requests[math.random(#requests)]
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int

    def line(self, name: str) -> str:
        return (
            f"{name:<22} {self.requests_per_second:>9.0f} req/s   p50 {self.p50_ms:6.2f} ms   "
            f"p99 {self.p99_ms:6.2f} ms   requests {self.requests}   errors {self.errors}"
        )


def _millis(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(output: str) -> WrkResult:
    def latency(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        if not match:
            raise ValueError(f"no {percent}% latency in wrk output:\n{output}")
        return _millis(*match.groups())

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])
    requests = int(re.search(r"(\d+) requests in", output)[1])
    errors = 0
    if non_2xx := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors += int(non_2xx[1])
    if socket_errors := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkResult(rps, latency("50"), latency("99"), requests, errors)


def add_wrk_arguments(parser: argparse.ArgumentParser) -> None:
    """The load every benchmark drives with wrk: how long, over how many connections, from how
    many threads."""
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)


def run_wrk(url: str, args: argparse.Namespace, script: Path | None = None) -> WrkResult:
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--latency",
    ]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(output)


def write_reserve_script(path: Path, musical_ids: list[str], tokens: str | list[str]) -> Path:
    """The wrk script that reserves one seat at a time in one of `musical_ids`, as one of the
    customers whose `tokens` it is given (picked at random per request)."""
    ids = ", ".join(json.dumps(musical_id) for musical_id in musical_ids)
    listed = [tokens] if isinstance(tokens, str) else tokens
    quoted = ", ".join(json.dumps(t) for t in listed)
    path.write_text(LUA_RESERVE % {"ids": ids, "tokens": quoted, "numbered": LUA_NUMBERED_THREADS})
    return path


def customer_tokens(host: DevHost, count: int) -> list[str]:
    """`count` customers' bearer tokens, signed in this process (one `python -m devhost token`
    subprocess per token would take minutes)."""
    return [host.signed_token(f"bench-customer-{n}") for n in range(count)]


def reservation_load(
    host: DevHost,
    directory: Path,
    musicals: int,
    max_seats_per_customer: int = 0,
    customers: int = 1,
) -> tuple[list[str], Path]:
    """Register `musicals` musicals of 100,000 seats (with that cap per customer, 0: none);
    their ids and the wrk script reserving in them as `customers` customers."""
    admin = auth(host.token("bench-admin", admin=True))
    cap = {"maxSeatsPerCustomer": max_seats_per_customer} if max_seats_per_customer else {}
    ids = [
        host.client.post(
            "/musicals",
            json={"title": f"Bench {i}", "seats": 100_000, "price": 100, **cap},
            headers=admin,
        ).json()["id"]
        for i in range(musicals)
    ]
    tokens = customer_tokens(host, customers)
    return ids, write_reserve_script(directory / "reserve.lua", ids, tokens)


def warm_up(url: str, args: argparse.Namespace) -> None:
    """Two seconds of load first, so that what is measured is a warm host."""
    run_wrk(url, argparse.Namespace(**{**vars(args), "duration": 2}))


def seconds_until(done: Callable[[], bool], started: float, timeout: float) -> float | None:
    """Seconds from `started` until `done()` holds (polled), or None after `timeout`."""
    while time.monotonic() - started < timeout:
        if done():
            return time.monotonic() - started
        time.sleep(POLL_SECONDS)
    return None


@dataclass(frozen=True)
class Round:
    """One round: a fresh host, its health run, then its reservation run."""

    health: WrkResult
    reserve: WrkResult
    health_cpu: CpuUse
    reserve_cpu: CpuUse
    held: int
    # The share of the machine's CPU time the hypervisor took during each run (see `stolen`).
    health_steal: float
    reserve_steal: float

    @property
    def ratio(self) -> float:
        return self.reserve.requests_per_second / self.health.requests_per_second

    def lines(self) -> list[str]:
        health_us = self.health_cpu.per_request_us(self.health.requests)["http"]
        reserve_us = self.reserve_cpu.per_request_us(self.reserve.requests)["http"]
        answered = self.reserve.requests - self.reserve.errors
        return [
            self.health.line("GET /api/health"),
            self.reserve.line("POST /api/reservations"),
            f"ratio reservations/health: {self.ratio:.0%}",
            f"seats held: {self.held} (201s answered: {answered})",
            f"reservations' {self.reserve_cpu.line(self.reserve.requests)} (devhost's processes)",
            f"HTTP host CPU µs per request: health {health_us:.0f}, reservation {reserve_us:.0f}"
            f" (ratio {health_us / reserve_us:.0%})",
            f"CPU time taken by the hypervisor (steal): health run {self.health_steal:.0%},"
            f" reservation run {self.reserve_steal:.0%}",
        ]


@dataclass(frozen=True)
class Saga:
    """How the saga behind the last round's load caught up once it stopped."""

    drain: Drain
    history_after: float | None


def stolen(steal: float, duration: float) -> float:
    """`steal` seconds over a run of `duration` seconds, as a share of all the machine's cores:
    the hypervisor's own load, which slows whatever runs then (this VM shares its host)."""
    return steal / (duration * (os.cpu_count() or 1))


def run_round(args: argparse.Namespace, follow_saga: bool) -> tuple[Round, Saga | None]:
    """Health then reservations on a fresh host; then, if asked, the saga's drain."""
    with tempfile.TemporaryDirectory(prefix="outerpark-bench-") as tmp:
        host = DevHost(Path(tmp) / "data").start()
        try:
            ids, script = reservation_load(
                host, Path(tmp), args.musicals, args.max_seats_per_customer, args.customers
            )
            base = f"http://127.0.0.1:{host.port}"
            warm_up(f"{base}/api/health", args)
            assert host.process is not None
            before_health, stolen_before_health = snapshot(host.process.pid), steal_seconds()
            health = run_wrk(f"{base}/api/health", args)
            before, stolen_before = snapshot(host.process.pid), steal_seconds()
            reserve = run_wrk(f"{base}/api/reservations", args, script)
            load_ended = time.monotonic()
            after, stolen_after = snapshot(host.process.pid), steal_seconds()
            measured = Round(
                health,
                reserve,
                used_between(before_health, before),
                used_between(before, after),
                held=sum(
                    100_000 - httpx.get(f"{host.base_url}/musicals/{i}").json()["availableSeats"]
                    for i in ids
                ),
                health_steal=stolen(stolen_before - stolen_before_health, args.duration),
                reserve_steal=stolen(stolen_after - stolen_before, args.duration),
            )
            if not follow_saga:
                return measured, None
            drain = follow_drain(host.data_dir, load_ended, DRAIN_TIMEOUT_SECONDS)
            history = seconds_until(
                lambda: in_history(host.data_dir) == measured.held,
                load_ended,
                DRAIN_TIMEOUT_SECONDS,
            )
            return measured, Saga(drain, history)
        finally:
            host.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_wrk_arguments(parser)
    parser.add_argument("--musicals", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--max-seats-per-customer",
        type=int,
        default=100,
        choices=range(101),
        metavar="0..100",
        help="the musicals' maxSeatsPerCustomer (0: no cap)",
    )
    parser.add_argument("--customers", type=int, default=200)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 2

    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, devhost on 127.0.0.1,"
        f" {args.rounds} round(s), a fresh host each; maxSeatsPerCustomer"
        f" {args.max_seats_per_customer or 'none'}, {args.customers} customers"
    )
    rounds: list[Round] = []
    saga: Saga | None = None
    for number in range(1, args.rounds + 1):
        measured, saga = run_round(args, follow_saga=number == args.rounds)
        rounds.append(measured)
        print(f"round {number}")
        print("\n".join(f"  {line}" for line in measured.lines()), flush=True)

    ratios = ", ".join(f"{r.ratio:.0%}" for r in rounds)
    p99s = ", ".join(f"{r.reserve.p99_ms:.0f}" for r in rounds)
    errors = sum(r.health.errors + r.reserve.errors for r in rounds)
    print(
        f"ratio reservations/health, median of {len(rounds)} round(s):"
        f" {statistics.median(r.ratio for r in rounds):.0%} (rounds: {ratios});"
        f" reservations' p99 by round: {p99s} ms; errors: {errors}"
        " (bar: ratio >= 50%, p99 < 50 ms, 0 errors)"
    )
    assert saga is not None
    held = rounds[-1].held
    print(f"saga behind the last round's load ({held} reservations):")
    print("\n".join(saga.drain.lines()))
    if saga.drain.drained_after is None:
        print(f"saga backlog: NOT drained within {DRAIN_TIMEOUT_SECONDS} s after the load stopped")
    else:
        print(
            f"saga backlog drained {saga.drain.drained_after:.1f} s after the load stopped (all"
            f" Confirmed; {held / (args.duration + saga.drain.drained_after):.0f} sagas/s over"
            " load and drain)"
        )
    if saga.history_after is None:
        print(f"history view: NOT complete within {DRAIN_TIMEOUT_SECONDS} s after the load stopped")
    else:
        print(
            f"history view complete (Confirmed, notice sent) {saga.history_after:.1f} s after"
            " the load"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
