"""The awkward answers of a real card gateway (docs/payment-gateway.md), end to end through devhost.

A hand-made gateway (tests/support/fake_gateway.py) answers as the contract says, and loses
answers, refuses the merchant's key, answers unknown codes, or fails refunds on demand. The
promise checked: at rest every Confirmed reservation is charged exactly once, and nothing else
is left charged.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Api, make_api
from tests.e2e.test_resilience_e2e import RECOVERY_TIMEOUT, SHORT_SETTINGS
from tests.support.devhost_process import DevHost
from tests.support.eventually import eventually
from tests.support.fake_gateway import FakeGateway

pytestmark = pytest.mark.e2e

# Longer than the client's timeout (0.5 s), shorter than 4 timeouts (the confirm window).
SLOW_SECONDS = 1.0


@pytest.fixture(scope="module")
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway(slow_seconds=SLOW_SECONDS) as running:
        yield running


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, gateway: FakeGateway) -> Iterator[Api]:
    host = DevHost(
        tmp_path_factory.mktemp("gateway-answers") / "data",
        {"PAYMENT_GATEWAY_URL": gateway.url, **SHORT_SETTINGS},
    ).start()
    yield make_api(host)
    host.close()


def confirm_sent(gateway: FakeGateway, order_id: str) -> bool:
    """Whether the gateway has been asked to confirm this order (the module's gateway has seen
    the other tests' confirms too)."""
    return any(call.body.get("orderId") == order_id for call in gateway.confirm_calls())


def payment_status(api: Api, reservation_id: str) -> str | None:
    item = api.history(api.alice).get(reservation_id)
    return item["paymentStatus"] if item else None


def test_a_lost_answer_ends_confirmed_with_exactly_one_charge(api, gateway):
    gateway.set_mode("up")
    musical = api.musical(price=1500)
    gateway.set_mode("lose_answer")
    try:
        reservation = api.reserve(musical["id"], seats=2).json()
        eventually(lambda: confirm_sent(gateway, reservation["id"]), what="the first confirm")
    finally:
        gateway.set_mode("up")

    eventually(
        lambda: api.status_of(reservation["id"]) == "Confirmed",
        timeout=RECOVERY_TIMEOUT,
        what="confirmed after the lost answer",
    )
    assert gateway.charges_per_order()[reservation["id"]] == 1
    assert gateway.balance_of(reservation["id"]) == 3000
    assert gateway.lookup_calls()  # "already processed" → looked up, not charged again


def test_a_cancel_crossing_an_approval_in_flight_ends_with_nothing_charged(api, gateway):
    gateway.set_mode("up")
    musical = api.musical(price=1500)
    gateway.set_mode("slow")
    try:
        reservation = api.reserve(musical["id"], seats=1).json()
        eventually(lambda: confirm_sent(gateway, reservation["id"]), what="the confirm in flight")
        cancelled = api.http.post(f"/reservations/{reservation['id']}/cancel", headers=api.alice)
        assert cancelled.status_code == 200
        eventually(
            lambda: reservation["id"] in gateway.approved_orders(),
            timeout=RECOVERY_TIMEOUT,
            what="the charge landing after the cancel",
        )
    finally:
        gateway.set_mode("up")

    eventually(
        lambda: payment_status(api, reservation["id"]) == "Cancelled",
        timeout=RECOVERY_TIMEOUT,
        what="the payment cancelled",
    )
    assert gateway.balance_of(reservation["id"]) == 0
    assert api.status_of(reservation["id"]) == "Cancelled"


@pytest.mark.parametrize("failure", ["merchant_refused", "unknown_4xx"])
def test_a_refused_merchant_key_or_an_unknown_code_rejects_nobody_and_completes_after(
    api, gateway, failure
):
    gateway.set_mode("up")
    musical = api.musical(price=1500)
    gateway.set_mode(failure)
    try:
        reservation = api.reserve(musical["id"], seats=1).json()
        eventually(
            lambda: payment_status(api, reservation["id"]) == "Deferred",
            timeout=RECOVERY_TIMEOUT,
            what="the payment deferred, not declined",
        )
        assert api.status_of(reservation["id"]) == "Reserved"
    finally:
        gateway.set_mode("up")

    eventually(
        lambda: api.status_of(reservation["id"]) == "Confirmed",
        timeout=RECOVERY_TIMEOUT,
        what="confirmed after recovery",
    )
    assert gateway.charges_per_order()[reservation["id"]] == 1


def test_a_failing_refund_shows_refunding_and_completes(api, gateway):
    gateway.set_mode("up")
    musical = api.musical(price=1500)
    reservation = api.reserve(musical["id"], seats=2).json()
    eventually(lambda: api.status_of(reservation["id"]) == "Confirmed", what="confirmation")
    gateway.set_mode("refund_down")
    try:
        api.http.post(f"/reservations/{reservation['id']}/cancel", headers=api.alice)
        eventually(
            lambda: payment_status(api, reservation["id"]) == "Refunding",
            timeout=RECOVERY_TIMEOUT,
            what="Refunding in the history while the refund fails",
        )
        assert gateway.balance_of(reservation["id"]) == 3000
    finally:
        gateway.set_mode("up")

    item = eventually(
        lambda: (
            (h := api.history(api.alice).get(reservation["id"]))
            and h["paymentStatus"] == "Cancelled"
            and len(h["notices"]) == 2
            and h
        ),
        timeout=RECOVERY_TIMEOUT,
        what="the refund done and notified",
    )
    assert gateway.balance_of(reservation["id"]) == 0
    [cancel_notice] = [n for n in item["notices"] if n["kind"] == "payment-cancelled"]
    assert "3000 of your payment of 3000 was refunded" in cancel_notice["message"]
