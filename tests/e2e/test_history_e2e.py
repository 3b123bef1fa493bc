"""The customer center end to end: reserve, pay, notify, cancel, then read it all in GET /history;
rebuild the view with the host stopped and read the same history again."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.devhost_process import PROJECT_ROOT
from tests.support.eventually import eventually

pytestmark = pytest.mark.e2e


def settled(api, reservation_id: str, reservation_status: str, payment_status: str, notices: int):
    def probe() -> dict | None:
        item = api.history(api.alice).get(reservation_id)
        if (
            item
            and item["reservationStatus"] == reservation_status
            and item["paymentStatus"] == payment_status
            and len(item["notices"]) == notices
        ):
            return item
        return None

    return eventually(probe, timeout=15, what=f"{reservation_status}/{payment_status} in history")


def test_a_reservation_its_payment_notices_and_cancellation_all_show_in_history(api):
    musical = api.musical(seats=5, price=1200, title="Hadestown")
    reserved = api.reserve(musical["id"], seats=2)
    assert reserved.status_code == 201, reserved.text
    reservation_id = reserved.json()["id"]

    confirmed = settled(api, reservation_id, "Confirmed", "Approved", notices=1)
    assert (confirmed["musicalTitle"], confirmed["seats"], confirmed["amount"]) == (
        "Hadestown",
        2,
        2400,
    )
    assert confirmed["notices"][0]["kind"] == "payment-approved"

    cancelled = api.http.post(f"/reservations/{reservation_id}/cancel", headers=api.alice)
    assert cancelled.status_code == 200, cancelled.text
    final = settled(api, reservation_id, "Cancelled", "Cancelled", notices=2)

    steps = [step["type"] for step in final["timeline"]]
    assert steps[0] == "ReservationPlaced"
    assert {"PaymentApproved", "ReservationConfirmed", "ReservationCancelled"} <= set(steps)
    assert {"PaymentCancelled", "NoticeSent"} <= set(steps)
    assert [step["at"] for step in final["timeline"]] == sorted(
        step["at"] for step in final["timeline"]
    )
    assert api.history(api.bob).get(reservation_id) is None


def test_the_rebuilt_view_serves_the_same_history(api):
    musical = api.musical(seats=5, price=500, title="Rent")
    reservation_id = api.reserve(musical["id"], seats=1).json()["id"]
    settled(api, reservation_id, "Confirmed", "Approved", notices=1)
    before = api.http.get("/history", headers=api.alice).json()

    api.host.stop()
    rebuilt = subprocess.run(
        [sys.executable, "-m", "devhost", "rebuild-history", "--data-dir", str(api.host.data_dir)],
        cwd=PROJECT_ROOT,
        env=api.host.env,
        capture_output=True,
        text=True,
        check=True,
    )
    api.host.start()

    assert "history rebuilt" in rebuilt.stdout
    assert api.http.get("/history", headers=api.alice).json() == before
