"""Resilience benchmark: a payment gateway outage and its recovery, with default settings.

    python -m bench.resilience [--reservations 100] [--down-seconds 60] [--duration 10]

Starts `python -m devhost` (default breaker and retry settings) against a FakeGateway that is
down (503), then:

1. places `--reservations` reservations and waits until every payment is Deferred;
2. counts the calls that reach the gateway over `--down-seconds`: the breaker's probes only;
3. switches the gateway up and times recovery → the last reservation Confirmed (the contract
   says < 60 s with default settings), and checks nobody was charged twice;
4. takes the gateway down again and, once the breaker is open, drives POST /reservations with
   wrk for `--duration` s: reservations accepted per second while payments are down (compare
   with `python -m bench.reservations`, the same load with a healthy gateway).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.reservations import add_wrk_arguments, run_wrk, write_reserve_script
from bench.saga_backlog import count_documents, unconfirmed
from tests.support.devhost_process import DevHost, auth
from tests.support.fake_gateway import FakeGateway


def deferred(data_dir: Path) -> int:
    return count_documents(
        data_dir,
        "payments",
        "json_extract(body, '$.type') = 'payment' AND json_extract(body, '$.status') = 'Deferred'",
    )


def wait_until(probe, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not probe():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(0.1)
    return time.monotonic() - started


def breaker_state(host: DevHost) -> str:
    return host.client.get("/health/ready").json()["breaker"]["state"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reservations", type=int, default=100)
    parser.add_argument("--down-seconds", type=float, default=60.0)
    add_wrk_arguments(parser)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="outerpark-resilience-") as tmp, FakeGateway() as gw:
        host = DevHost(Path(tmp) / "data", {"PAYMENT_GATEWAY_URL": gw.url}).start()
        try:
            admin = auth(host.token("bench-admin", admin=True))
            token = host.token("bench-customer")
            customer = auth(token)
            musical = host.client.post(
                "/musicals",
                json={"title": "Outage", "seats": 100_000, "price": 100},
                headers=admin,
            ).json()["id"]

            # 1. reservations while the gateway is down
            gw.set_mode("down")
            with ThreadPoolExecutor(8) as pool:
                answers = list(
                    pool.map(
                        lambda _: (
                            host.client.post(
                                "/reservations",
                                json={"musicalId": musical, "seats": 1},
                                headers=customer,
                            ).status_code
                        ),
                        range(args.reservations),
                    )
                )
            accepted = answers.count(201)
            all_deferred = wait_until(
                lambda: deferred(host.data_dir) == accepted, 60, "every payment Deferred"
            )

            # 2. what the failing gateway sees
            calls_before = len(gw.calls)
            time.sleep(args.down_seconds)
            calls_down = len(gw.calls) - calls_before
            calls_total_down = len(gw.calls)

            # 3. recovery
            gw.set_mode("up")
            recovery = wait_until(lambda: unconfirmed(host.data_dir) == 0, 180, "recovery")
            charges = gw.charges_per_order()
            charged_twice = sum(1 for count in charges.values() if count > 1)

            # 4. accepting orders while payments are down
            gw.set_mode("down")
            more = [
                host.client.post(
                    "/reservations", json={"musicalId": musical, "seats": 1}, headers=customer
                ).status_code
                for _ in range(10)
            ]
            assert more == [201] * 10, more
            wait_until(lambda: breaker_state(host) == "open", 30, "breaker open")
            script = write_reserve_script(Path(tmp) / "reserve.lua", [musical], token)
            burst = run_wrk(f"http://127.0.0.1:{host.port}/api/reservations", args, script)
            state_after_burst = breaker_state(host)
            held = (
                100_000 - httpx.get(f"{host.base_url}/musicals/{musical}").json()["availableSeats"]
            )
        finally:
            host.close()

    per_minute = calls_down * 60 / args.down_seconds
    print("devhost with default settings, FakeGateway answering 503 while down")
    print(
        f"reservations while down: {accepted}/{args.reservations} answered 201;"
        f" all payments Deferred {all_deferred:.1f} s later"
    )
    print(
        f"gateway calls while down: {calls_down} in {args.down_seconds:.0f} s"
        f" = {per_minute:.1f}/min once the breaker was open"
        f" ({calls_total_down} in the whole outage, first attempts included)"
    )
    print(
        f"recovery: last payment Confirmed {recovery:.1f} s after the gateway came back"
        f" (contract: < 60 s); orders charged twice: {charged_twice}"
    )
    print(
        f"accepting while down (breaker open, then {state_after_burst}):"
        f" {burst.line('POST /api/reservations')}"
    )
    print(f"seats held in total: {held}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
