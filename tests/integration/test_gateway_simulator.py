"""The local payment gateway simulator, over HTTP, and the client talking to it."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from devhost.gateway_simulator import Awkwardness, RunningSimulator, start_simulator
from shared.adapters.payment_gateway import HttpPaymentGateway
from shared.ports import PaymentDeclined

CONFIRM = "/v1/payments/confirm"


@pytest.fixture
def simulator() -> Iterator[RunningSimulator]:
    running = start_simulator(latency_ms=0)
    yield running
    running.stop()


@pytest.fixture
def http(simulator: RunningSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=simulator.url, timeout=5) as client:
        yield client


def confirm(
    http: httpx.Client, order_id: str, amount: int = 30000, name: str = "Wicked", key: str = ""
) -> httpx.Response:
    return http.post(
        CONFIRM,
        json={"orderId": order_id, "amount": amount, "orderName": name},
        headers={"Idempotency-Key": key or order_id},
    )


def test_it_listens_on_a_free_port_of_the_loopback_by_default(simulator: RunningSimulator) -> None:
    assert simulator.url.startswith("http://127.0.0.1:")
    assert not simulator.url.endswith(":0")


def test_a_confirm_is_approved_with_the_documented_answer(http: httpx.Client) -> None:
    response = confirm(http, "r-1")

    assert response.status_code == 200
    body = response.json()
    assert (body["orderId"], body["status"]) == ("r-1", "DONE")
    assert body["paymentKey"]
    assert body["approvedAt"]


def test_the_same_idempotency_key_gets_the_same_payment_and_one_charge(
    http: httpx.Client,
) -> None:
    first = confirm(http, "r-1").json()
    again = confirm(http, "r-1").json()

    assert again == first
    payment = http.get(f"/v1/payments/{first['paymentKey']}").json()
    assert (payment["orderId"], payment["totalAmount"], payment["status"]) == ("r-1", 30000, "DONE")


def test_an_order_already_paid_is_not_charged_again_under_another_key(http: httpx.Client) -> None:
    first = confirm(http, "r-1", key="key-a")
    again = confirm(http, "r-1", key="key-b")

    assert first.status_code == 200
    assert (again.status_code, again.json()["code"]) == (400, "ALREADY_PROCESSED_PAYMENT")
    assert http.get("/v1/payments/orders/r-1").json()["paymentKey"] == first.json()["paymentKey"]


def test_a_key_reused_for_another_payment_is_refused(http: httpx.Client) -> None:
    confirm(http, "r-1", key="key-a")

    response = confirm(http, "r-2", key="key-a")

    assert response.status_code == 422
    assert response.json()["code"] == "INVALID_IDEMPOTENCY_KEY"


@pytest.mark.parametrize(
    ("name", "amount"),
    [("DECLINE me", 30000), ("please decline", 30000), ("Wicked", 10013), ("Wicked", 113)],
)
def test_an_order_named_decline_or_an_amount_ending_in_13_is_declined(
    http: httpx.Client, name: str, amount: int
) -> None:
    response = confirm(http, "r-1", amount=amount, name=name)

    assert response.status_code == 403
    assert response.json()["code"] == "REJECT_CARD_PAYMENT"


@pytest.mark.parametrize("amount", [10014, 1300, 13000])
def test_other_amounts_are_approved(http: httpx.Client, amount: int) -> None:
    assert confirm(http, "r-1", amount=amount).status_code == 200


def test_a_repeated_declined_confirm_is_declined_again(http: httpx.Client) -> None:
    first = confirm(http, "r-1", name="DECLINE")
    again = confirm(http, "r-1", name="DECLINE")

    assert (first.status_code, again.status_code) == (403, 403)


def test_a_decline_rate_of_one_declines_everything_and_a_retry_keeps_the_answer() -> None:
    running = start_simulator(latency_ms=0, decline_rate=1.0, rng=random.Random(1))
    try:
        with httpx.Client(base_url=running.url) as http:
            assert confirm(http, "r-1").status_code == 403
            assert confirm(http, "r-1").status_code == 403
    finally:
        running.stop()


def test_the_environment_sets_the_decline_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_SIM_DECLINE_RATE", "1")
    running = start_simulator(latency_ms=0)
    try:
        with httpx.Client(base_url=running.url) as http:
            assert confirm(http, "r-1").status_code == 403
    finally:
        running.stop()


def test_cancel_marks_the_payment_canceled_and_answers_the_same_when_repeated(
    http: httpx.Client,
) -> None:
    key = confirm(http, "r-1").json()["paymentKey"]

    answers = [
        http.post(
            f"/v1/payments/{key}/cancel",
            json={"cancelReason": "customer cancelled"},
            headers={"Idempotency-Key": "c-1"},
        )
        for _ in range(2)
    ]

    assert [answer.status_code for answer in answers] == [200, 200]
    assert answers[1].json() == answers[0].json()
    assert (answers[0].json()["status"], answers[0].json()["balanceAmount"]) == ("CANCELED", 0)
    assert http.get(f"/v1/payments/{key}").json()["status"] == "CANCELED"


def cancel(http: httpx.Client, key: str, idempotency_key: str, amount: int | None = None):
    body: dict = {"cancelReason": "customer cancelled"}
    if amount is not None:
        body["cancelAmount"] = amount
    return http.post(
        f"/v1/payments/{key}/cancel", json=body, headers={"Idempotency-Key": idempotency_key}
    )


def test_a_partial_cancel_leaves_the_balance_and_a_later_full_one_ends_it(
    http: httpx.Client,
) -> None:
    key = confirm(http, "r-1", amount=30000).json()["paymentKey"]

    partial = cancel(http, key, "c-1", amount=9000).json()
    rest = cancel(http, key, "c-2").json()
    nothing_left = cancel(http, key, "c-3")

    assert (partial["status"], partial["balanceAmount"]) == ("PARTIAL_CANCELED", 21000)
    assert (rest["status"], rest["balanceAmount"]) == ("CANCELED", 0)
    assert nothing_left.status_code == 400
    assert nothing_left.json()["code"] == "ALREADY_CANCELED_PAYMENT"
    assert cancel(http, key, "c-3").json()["code"] == "ALREADY_CANCELED_PAYMENT"  # replayed


def test_an_order_lookup_finds_the_payment_or_says_not_found(http: httpx.Client) -> None:
    assert http.get("/v1/payments/orders/r-1").json()["code"] == "NOT_FOUND_PAYMENT"
    key = confirm(http, "r-1").json()["paymentKey"]

    found = http.get("/v1/payments/orders/r-1").json()

    assert (found["paymentKey"], found["status"], found["totalAmount"]) == (key, "DONE", 30000)


def test_a_call_whose_key_is_in_flight_gets_409() -> None:
    running = start_simulator(latency_ms=300)
    try:
        with httpx.Client(base_url=running.url, timeout=5) as http, ThreadPoolExecutor(2) as pool:
            first = pool.submit(confirm, http, "r-1")
            time.sleep(0.1)
            second = confirm(http, "r-1")
            assert first.result().status_code == 200
    finally:
        running.stop()

    assert (second.status_code, second.json()["code"]) == (409, "IDEMPOTENT_REQUEST_PROCESSING")


def test_a_lost_answer_charged_and_the_repeat_says_already_processed() -> None:
    running = start_simulator(latency_ms=0, awkward=Awkwardness(lose_answer_rate=1.0))
    try:
        with httpx.Client(base_url=running.url) as http:
            lost = confirm(http, "r-1")
            again = confirm(http, "r-1")
            found = http.get("/v1/payments/orders/r-1")
    finally:
        running.stop()

    assert lost.status_code == 500
    assert again.json()["code"] == "ALREADY_PROCESSED_PAYMENT"
    assert found.json()["status"] == "DONE"


def test_a_refused_merchant_key_answers_401_to_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_SIM_MERCHANT_KEY_REFUSED", "true")
    running = start_simulator(latency_ms=0)
    try:
        with httpx.Client(base_url=running.url) as http:
            answers = [confirm(http, "r-1"), http.get("/v1/payments/orders/r-1")]
    finally:
        running.stop()

    assert [(a.status_code, a.json()["code"]) for a in answers] == [(401, "UNAUTHORIZED_KEY")] * 2


def test_unknown_codes_answer_400_and_charge_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_SIM_UNKNOWN_CODE_RATE", "1")
    running = start_simulator(latency_ms=0)
    try:
        with httpx.Client(base_url=running.url) as http:
            answer = confirm(http, "r-1")
    finally:
        running.stop()

    assert answer.status_code == 400
    assert answer.json()["code"] == "SIMULATED_UNKNOWN_CODE"


def test_cancelling_an_unknown_payment_is_not_found(http: httpx.Client) -> None:
    response = http.post(
        "/v1/payments/nope/cancel",
        json={"cancelReason": "x"},
        headers={"Idempotency-Key": "c-1"},
    )

    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND_PAYMENT"


@pytest.mark.parametrize(
    "body",
    [
        {"orderId": "r-1", "amount": "30000", "orderName": "Wicked"},
        {"orderId": "r-1", "amount": 1.5, "orderName": "Wicked"},
        {"orderId": "r-1", "amount": -1, "orderName": "Wicked"},
        {"orderId": "r-1", "amount": 30000},
    ],
)
def test_a_malformed_confirm_is_a_bad_request(http: httpx.Client, body: dict) -> None:
    response = http.post(CONFIRM, json=body, headers={"Idempotency-Key": "r-1"})

    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"


def test_the_http_client_confirms_declines_and_cancels_against_the_simulator(
    simulator: RunningSimulator,
) -> None:
    with HttpPaymentGateway(simulator.url, timeout_seconds=2) as client:
        approval = client.confirm("r-1", 30000, "Wicked")
        assert client.confirm("r-1", 30000, "Wicked").payment_key == approval.payment_key
        with pytest.raises(PaymentDeclined) as declined:
            client.confirm("r-2", 30000, "DECLINE")
        client.cancel(approval.payment_key, "customer cancelled", idempotency_key="r-1.cancel")

    assert declined.value.code == "REJECT_CARD_PAYMENT"


def test_after_stop_nothing_listens_any_more() -> None:
    running = start_simulator(latency_ms=0)
    running.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.post(running.url + CONFIRM, json={}, timeout=2)
