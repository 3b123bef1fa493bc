"""What does a ticket cost to sell on Azure? Operations per completed saga, priced.

    python -m bench.cloud_cost [--sagas 20] [--prices bench/prices/azure-eastus-2026-12.json]
        [--json]

Runs the whole host in this process (HTTP and every trigger, as devhost does, over the
embedded store and bus in a fresh data dir, with the local payment gateway simulator) with
`OUTERPARK_COUNT_OPERATIONS=1`, so that the store and the bus tally every operation the app
asks of them (shared.adapters.counting) and every function execution. It registers a musical,
then places reservations one after the other, each waited for until it is Confirmed with its
notice in the customer's history (read around the tallies), and prints per completed saga:
the count of each Cosmos DB, Service Bus and function operation, the request units and the
money of each (bench.cost_model with the price sheet), and the cost per 1,000 tickets.
One saga at a time is the worst case for the change-feed functions: under load one execution
carries many sagas' documents.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.cost_model import DEFAULT_SHEET, load_sheet, saga_cost
from devhost.embedded.backends import LOCAL_BACKENDS
from tests.support.devhost_process import free_port

QUIET_SECONDS = 1.5
SAGA_TIMEOUT_SECONDS = 20.0


def measure(sagas: int, data_dir: Path) -> dict[str, float]:
    """The tallies of `sagas` completed sagas, divided by `sagas`."""
    os.environ.update(
        {
            "OUTERPARK_DATA_DIR": str(data_dir),
            "OUTERPARK_LOCAL_BACKENDS": LOCAL_BACKENDS,
            "OUTERPARK_LOCAL_DEV": "1",
            "OUTERPARK_COUNT_OPERATIONS": "1",
            "OUTERPARK_RECORD_SPANS": "0",
            # The sweeper's runs are a fixed cost per 30 s, not a saga's (docs/cost.md).
            "SAGA_SWEEP_SCHEDULE": "0 0 0 1 1 *",
        }
    )
    from devhost.app_loader import load_app
    from devhost.gateway_simulator import start_simulator
    from devhost.host import DevHost, Listen
    from devhost.services import close_services, host_services
    from devhost.tokens import issue_token
    from shared.adapters.counting import COUNTS
    from shared.observability import on_function_executed

    simulator = start_simulator(latency_ms=0, decline_rate=0.0)
    os.environ["PAYMENT_GATEWAY_URL"] = simulator.url
    on_function_executed(COUNTS.executed)
    services = host_services()
    port = free_port()
    host = DevHost(load_app("function_app"), services, Listen(port=port), shutdown_grace_seconds=2)
    serving = threading.Thread(target=lambda: asyncio.run(host.serve()), daemon=True)
    serving.start()
    uncounted = services.store.inner.inner  # beneath the tracing and the counting decorators
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api", timeout=10) as http:
            _wait_for(lambda: _healthy(http), "the host to start")
            admin = {"Authorization": f"Bearer {issue_token('boss', ['admin'], 3600)}"}
            alice = {"Authorization": f"Bearer {issue_token('alice', [], 3600)}"}
            musical = http.post(
                "/musicals",
                json={"title": "Cost", "seats": 2 * sagas, "price": 1000},
                headers=admin,
            ).json()
            _quiet()
            before = COUNTS.snapshot()
            for _ in range(sagas):
                placed = http.post(
                    "/reservations", json={"musicalId": musical["id"], "seats": 2}, headers=alice
                )
                placed.raise_for_status()
                reservation_id = placed.json()["id"]
                _wait_for(
                    lambda id_=reservation_id: _complete(uncounted, id_), "a saga to complete"
                )
            _quiet()
            after = COUNTS.snapshot()
    finally:
        host.request_stop()
        serving.join(10)
        close_services(services)
        simulator.stop()
    return {key: (after[key] - before.get(key, 0)) / sagas for key in sorted(after)}


def _healthy(http: httpx.Client) -> bool:
    try:
        return http.get("/health").status_code == 200
    except httpx.TransportError:
        return False


def _complete(store: Any, reservation_id: str) -> bool:
    from shared.ports import NotFound
    from shared.topology import CUSTOMER_CENTER

    try:
        item = store.read(CUSTOMER_CENTER.name, "alice", reservation_id)
    except NotFound:
        return False
    return (
        item.get("reservationStatus") == "Confirmed"
        and item.get("paymentStatus") == "Approved"
        and bool(item.get("notices"))
    )


def _quiet() -> None:
    """Wait until nothing has been tallied for QUIET_SECONDS (late projections, checkpoints)."""
    from shared.adapters.counting import COUNTS

    last = COUNTS.snapshot()
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < QUIET_SECONDS:
        time.sleep(0.1)
        now = COUNTS.snapshot()
        if now != last:
            last, quiet_since = now, time.monotonic()


def _wait_for(probe: Any, what: str) -> None:
    deadline = time.monotonic() + SAGA_TIMEOUT_SECONDS
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {SAGA_TIMEOUT_SECONDS} s for {what}")
        time.sleep(0.02)


def report(counts: dict[str, float], sheet: dict[str, Any]) -> str:
    cost = saga_cost(counts, sheet)
    lines = [f"per completed saga (prices: {sheet['name']}, {sheet['region']}, {sheet['date']})"]
    for key, value in counts.items():
        if value and not key.endswith(".seconds"):
            lines.append(f"  {key:<48} {value:8.2f}")
    lines += [
        f"  request units (estimated)                        {cost.request_units:8.1f}",
        f"  Service Bus operations                           {cost.bus_operations:8.1f}",
        f"  function executions                              {cost.executions:8.1f}",
        f"  GB-seconds (measured time x instance memory)     {cost.gb_seconds:8.3f}",
        "cost per 1,000 tickets (USD; a ticket = one reservation's saga)",
    ]
    for label, usd in (
        ("Cosmos DB serverless", cost.usd_cosmos_serverless),
        ("Cosmos DB provisioned, fully used", cost.usd_cosmos_provisioned),
        ("Service Bus Standard (beyond the base charge)", cost.usd_service_bus),
        ("Functions Flex Consumption", cost.usd_functions),
        ("total, serverless Cosmos DB", cost.usd_serverless),
        ("total, provisioned Cosmos DB", cost.usd_provisioned),
    ):
        lines.append(f"  {label:<48} {1000 * usd:8.4f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cloud_cost", description=__doc__)
    parser.add_argument("--sagas", type=int, default=20)
    parser.add_argument("--prices", type=Path, default=DEFAULT_SHEET)
    parser.add_argument("--json", action="store_true", help="print the tallies as JSON")
    args = parser.parse_args()
    if args.sagas < 1:
        parser.error("--sagas must be at least 1")
    sheet = load_sheet(args.prices)
    with tempfile.TemporaryDirectory(prefix="outerpark-cost-") as scratch:
        counts = measure(args.sagas, Path(scratch) / "data")
    if args.json:
        cost = saga_cost(counts, sheet)
        print(json.dumps({"perSaga": counts, "cost": vars(cost)}, indent=2))
    else:
        print(report(counts, sheet))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
