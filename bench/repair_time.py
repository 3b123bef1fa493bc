"""Time from a dead-lettered saga step to its repair by the sweeper, with default settings.

    python -m bench.repair_time [--timeout 400]

docs/resilience.md bounds it at about 210 s with the defaults (`SAGA_REPAIR_AFTER_SECONDS`
180: a step counts as stopped once its payment saw no write and no due retry for that long;
`SAGA_SWEEP_SCHEDULE` every 30 s). This measures it through `python -m devhost`, every
`SAGA_*`, breaker and retry setting left at its default:

1. a reservation is placed while the FakeGateway answers 503, so its payment is Deferred and a
   retry is scheduled on the bus;
2. the host is stopped, and the retry is delivered and abandoned until the bus dead-letters it
   (a payment function failing on every delivery, as with the store down for minutes);
3. the gateway comes back, the host restarts; nobody replays the dead letter. Timed: the
   dead-lettering → the reservation Confirmed (and, for the bound, the payment's last write →
   Confirmed), with the order charged once.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from bench.resilience import wait_until
from devhost.embedded.sqlite_bus import SqliteMessageBus
from devhost.embedded.sqlite_reader import DATABASE_FILE
from shared.topology import SUB_PAYMENT, TOPIC_RESERVATION
from tests.support.devhost_process import DevHost, auth
from tests.support.fake_gateway import FakeGateway

DEFAULTED = (
    "SAGA_SWEEP_SCHEDULE",
    "SAGA_REPAIR_AFTER_SECONDS",
    "PAYMENT_DEADLINE_SECONDS",
    "PAYMENT_RETRY_BASE_SECONDS",
    "PAYMENT_RETRY_MAX_SECONDS",
    "BREAKER_FAILURE_THRESHOLD",
    "BREAKER_OPEN_SECONDS",
    "GATEWAY_TIMEOUT_SECONDS",
)


def payment_of(data_dir: Path, reservation_id: str) -> dict[str, str]:
    """The payment document's status and last write (`updatedAt`)."""
    with closing(sqlite3.connect(data_dir / DATABASE_FILE)) as store:
        row = store.execute(
            "SELECT json_extract(body, '$.status'), json_extract(body, '$.updatedAt')"
            " FROM items WHERE container = 'payments' AND id = ?",
            [reservation_id],
        ).fetchone()
    return {"status": row[0], "updatedAt": row[1]} if row else {}


def dead_letter_the_pending_retry(data_dir: Path, timeout: float) -> None:
    """Deliver the scheduled retry and abandon it until the bus dead-letters it."""
    bus = SqliteMessageBus(data_dir)
    try:
        deadline = time.monotonic() + timeout
        while not bus.dead_letters(TOPIC_RESERVATION, SUB_PAYMENT):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the pending retry did not come due within {timeout} s")
            for message in bus.receive(TOPIC_RESERVATION, SUB_PAYMENT, max_messages=10):
                bus.abandon(message)
            bus.wait_for_messages(TOPIC_RESERVATION, SUB_PAYMENT, timeout=0.5)
    finally:
        bus.close()


def status_of(host: DevHost, reservation_id: str, admin: dict[str, str]) -> str:
    return host.client.get(f"/reservations/{reservation_id}", headers=admin).json()["status"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=400.0, help="seconds to wait for repair")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="outerpark-repair-") as tmp, FakeGateway() as gw:
        data_dir = Path(tmp) / "data"
        env: dict[str, str | None] = {"PAYMENT_GATEWAY_URL": gw.url}
        env |= {setting: None for setting in DEFAULTED}  # whatever this shell sets
        host = DevHost(data_dir, env).start()
        try:
            admin = auth(host.token("bench-admin", admin=True))
            customer = auth(host.token("bench-customer"))
            musical = host.client.post(
                "/musicals", json={"title": "Repair", "seats": 10, "price": 100}, headers=admin
            ).json()["id"]
            gw.set_mode("down")
            reservation_id = host.client.post(
                "/reservations", json={"musicalId": musical, "seats": 1}, headers=customer
            ).json()["id"]
            wait_until(
                lambda: payment_of(data_dir, reservation_id).get("status") == "Deferred",
                30,
                "payment Deferred",
            )
        finally:
            host.close()

        # The retry delay is at most PAYMENT_RETRY_MAX_SECONDS (20) by default.
        dead_letter_the_pending_retry(data_dir, timeout=60)
        dead_lettered_at = time.monotonic()
        dead_lettered_wall = datetime.now(UTC)
        last_write = datetime.fromisoformat(payment_of(data_dir, reservation_id)["updatedAt"])
        gw.set_mode("up")

        restarted = DevHost(data_dir, env).start()
        try:
            admin = auth(restarted.token("bench-admin", admin=True))
            wait_until(
                lambda: status_of(restarted, reservation_id, admin) == "Confirmed",
                args.timeout,
                "repair",
            )
            repaired = time.monotonic() - dead_lettered_at
            repaired_wall = datetime.now(UTC)
            repairs = sum(
                f"saga of {reservation_id} driven on: payment-stalled" in line
                for line in restarted.logs().splitlines()
            )
        finally:
            restarted.close()

    charges = gw.charges_per_order().get(reservation_id, 0)
    since_last_write = (repaired_wall - last_write).total_seconds()
    print("devhost with default SAGA_*, breaker and retry settings; FakeGateway 503, then up")
    print(
        f"payment's last write → dead-lettered: "
        f"{(dead_lettered_wall - last_write).total_seconds():.1f} s"
    )
    print(f"dead-lettered → Confirmed: {repaired:.1f} s (bound ~210 s: repair after 180 s + 30 s)")
    print(f"payment's last write → Confirmed: {since_last_write:.1f} s")
    print(f"charges of the order: {charges}; repairs logged (payment-stalled): {repairs}")
    return 0 if charges == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
