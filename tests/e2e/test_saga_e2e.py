"""The event-driven saga end to end: payment, notice, compensation, and a crash in the middle."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import make_api
from tests.support.devhost_process import DevHost
from tests.support.eventually import eventually
from tests.support.fake_gateway import FakeGateway

pytestmark = pytest.mark.e2e


def test_a_reservation_is_confirmed_with_its_notice(api, gateway):
    gateway.set_mode("up")
    reservation = api.reserve(api.musical(price=700)["id"], seats=2).json()

    eventually(lambda: api.status_of(reservation["id"]) == "Confirmed", what="confirmation")
    item = eventually(
        lambda: (h := api.history(api.alice).get(reservation["id"])) and h["notices"] and h,
        what="notice in history",
    )

    assert item["paymentStatus"] == "Approved"
    assert [n["kind"] for n in item["notices"]] == ["payment-approved"]
    assert gateway.charges_per_order().get(reservation["id"]) == 1


def test_a_declined_payment_rejects_the_reservation_and_gives_the_seats_back(api, gateway):
    musical = api.musical(seats=4)
    gateway.set_mode("decline")
    try:
        reservation = api.reserve(musical["id"], seats=3).json()
        eventually(lambda: api.status_of(reservation["id"]) == "Rejected", what="rejection")
    finally:
        gateway.set_mode("up")

    assert api.http.get(f"/musicals/{musical['id']}").json()["availableSeats"] == 4
    item = eventually(
        lambda: (h := api.history(api.alice).get(reservation["id"])) and h["notices"] and h
    )
    assert item["notices"][0]["kind"] == "payment-declined"
    cancel = api.http.post(f"/reservations/{reservation['id']}/cancel", headers=api.alice)
    assert cancel.status_code == 409


def test_a_cancelled_reservation_is_refunded_at_the_gateway_and_notified(api, gateway):
    gateway.set_mode("up")
    musical = api.musical(seats=5)
    reservation = api.reserve(musical["id"], seats=2).json()
    eventually(lambda: api.status_of(reservation["id"]) == "Confirmed")

    cancelled = api.http.post(f"/reservations/{reservation['id']}/cancel", headers=api.alice)

    assert cancelled.json()["status"] == "Cancelled"
    assert api.http.get(f"/musicals/{musical['id']}").json()["availableSeats"] == 5
    payment_key = gateway.payment_key_of(reservation["id"])
    eventually(lambda: gateway.payment_status(payment_key) == "CANCELED", what="gateway refund")
    item = eventually(
        lambda: (
            (h := api.history(api.alice).get(reservation["id"])) and len(h["notices"]) == 2 and h
        )
    )
    assert {n["kind"] for n in item["notices"]} == {"payment-approved", "payment-cancelled"}
    assert item["reservationStatus"] == "Cancelled"
    assert item["paymentStatus"] == "Cancelled"


def test_a_crash_while_payments_are_in_flight_loses_nothing_and_charges_nobody_twice(
    tmp_path,
):
    with FakeGateway() as gateway:
        host = DevHost(tmp_path / "data", {"PAYMENT_GATEWAY_URL": gateway.url}).start()
        api = make_api(host)
        musical = api.musical(seats=100, price=100)
        with ThreadPoolExecutor(8) as pool:
            accepted = [
                r.json()["id"]
                for r in pool.map(lambda _: api.reserve(musical["id"], seats=1), range(40))
                if r.status_code == 201
            ]
        host.kill()

        restarted = DevHost(host.data_dir, {"PAYMENT_GATEWAY_URL": gateway.url})
        restarted.start()
        try:
            again = make_api(restarted)
            eventually(
                lambda: all(again.status_of(rid) == "Confirmed" for rid in accepted),
                # Messages locked by the killed host come back when their lock (30 s) expires.
                timeout=60,
                what="every accepted reservation confirmed after the restart",
            )
            assert len(accepted) == 40
            assert all(count == 1 for count in gateway.charges_per_order().values())
            assert gateway.approved_orders() == set(accepted)
            remaining = again.http.get(f"/musicals/{musical['id']}").json()["availableSeats"]
            assert remaining == 100 - len(accepted)
        finally:
            restarted.close()
