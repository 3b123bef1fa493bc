"""Time end to end through `python -m devhost`: the payment deadline expires unpaid
reservations, and the sweeper drives on a saga whose message was dead-lettered, with short
settings (a sweep every second)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Api, make_api
from tests.e2e.test_deadletters_e2e import WHERE, fail_every_delivery_of_the_pending_retry, listed
from tests.e2e.test_resilience_e2e import SHORT_SETTINGS, all_deferred_in_history
from tests.support.devhost_process import DevHost
from tests.support.eventually import eventually
from tests.support.fake_gateway import FakeGateway

pytestmark = pytest.mark.e2e

TIME_SETTINGS = {
    **SHORT_SETTINGS,
    "PAYMENT_DEADLINE_SECONDS": "3",
    "SAGA_SWEEP_SCHEDULE": "* * * * * *",
    "SAGA_REPAIR_AFTER_SECONDS": "2",
}


def test_an_unpaid_reservation_expires_at_its_deadline_seats_back_nothing_charged(
    tmp_path: Path,
) -> None:
    with FakeGateway() as gateway:
        host = DevHost(tmp_path / "data", {"PAYMENT_GATEWAY_URL": gateway.url, **TIME_SETTINGS})
        api: Api = make_api(host.start())
        try:
            musical = api.musical(seats=5)
            gateway.set_mode("down")
            reservation = api.reserve(musical["id"], seats=2).json()
            placed_at = time.monotonic()

            eventually(lambda: api.status_of(reservation["id"]) == "Expired", timeout=15)
            expired_after = time.monotonic() - placed_at
            gateway.set_mode("up")

            seats = api.http.get(f"/musicals/{musical['id']}").json()["availableSeats"]
            assert seats == 5
            cancel = api.http.post(f"/reservations/{reservation['id']}/cancel", headers=api.alice)
            assert cancel.status_code == 409
            assert cancel.json()["type"].endswith("/expired")
            item = eventually(
                lambda: (
                    api.history(api.alice).get(reservation["id"], {}).get("notices")
                    and api.history(api.alice)[reservation["id"]]
                ),
                timeout=15,
            )
            assert item["reservationStatus"] == "Expired"
            eventually(lambda: item_payment(api, reservation["id"]) == "Cancelled", timeout=15)
            # One notice, sent once the payment settled: it says what happened to the money.
            notices = api.history(api.alice)[reservation["id"]]["notices"]
            assert [notice["kind"] for notice in notices] == ["reservation-expired"]
            # Nothing left charged. A confirm retried as the gateway came back may have charged
            # before the payment saw the expiry: then it was refunded, and the notice says so.
            payment_key = gateway.payment_key_of(reservation["id"])
            assert gateway.balance_of(reservation["id"]) == 0
            if payment_key is None:
                assert "you were not charged" in notices[0]["message"]
            else:
                assert gateway.payment_status(payment_key) == "CANCELED"
                assert "was refunded" in notices[0]["message"]
            assert expired_after < 3 + 60
        finally:
            host.close()


def item_payment(api: Api, reservation_id: str) -> str | None:
    return api.history(api.alice).get(reservation_id, {}).get("paymentStatus")


def test_a_dead_lettered_payment_retry_is_repaired_by_the_sweeper_without_a_replay(
    tmp_path: Path,
) -> None:
    settings = {**TIME_SETTINGS, "PAYMENT_DEADLINE_SECONDS": "3600"}
    with FakeGateway() as gateway:
        env = {"PAYMENT_GATEWAY_URL": gateway.url, **settings}
        host = DevHost(tmp_path / "data", env).start()
        api: Api = make_api(host)
        musical = api.musical(seats=5)
        gateway.set_mode("down")
        reservation = api.reserve(musical["id"], seats=1).json()
        eventually(lambda: all_deferred_in_history(api, [reservation["id"]]))
        host.stop()
        fail_every_delivery_of_the_pending_retry(host.data_dir)
        dead_lettered_at = time.monotonic()
        gateway.set_mode("up")

        restarted = DevHost(host.data_dir, env).start()
        try:
            again = make_api(restarted)
            assert len(listed(restarted.data_dir, *WHERE)) == 1
            eventually(lambda: again.status_of(reservation["id"]) == "Confirmed", timeout=30)
            repaired_after = time.monotonic() - dead_lettered_at
            assert gateway.charges_per_order() == {reservation["id"]: 1}
            assert "payment-stalled" in restarted.logs()
            print(f"dead-lettered → Confirmed in {repaired_after:.1f} s (repair after 2 s)")
        finally:
            restarted.close()
