"""The HTTP payment gateway client against a real fake gateway, in each of its modes."""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import pytest

from devhost.embedded.sqlite_store import SqliteDocumentStore
from shared.adapters.payment_gateway import HttpPaymentGateway
from shared.breaker import BreakerConfig, BreakerOpen, CircuitBreaker, GuardedPaymentGateway
from shared.ports import (
    AlreadyProcessed,
    GatewayNotReached,
    GatewayPayment,
    GatewayUnavailable,
    MerchantRejected,
    OutcomeUnknown,
    PaymentDeclined,
    StillProcessing,
)
from shared.settings import Settings
from tests.support.fake_gateway import FakeGateway
from tests.support.manual_clock import ManualClock

TIMEOUT_SECONDS = 0.5


@pytest.fixture
def fake() -> Iterator[FakeGateway]:
    with FakeGateway(slow_seconds=1.5) as gateway:
        yield gateway


@pytest.fixture
def client(fake: FakeGateway) -> Iterator[HttpPaymentGateway]:
    with HttpPaymentGateway(fake.url, TIMEOUT_SECONDS) as gateway:
        yield gateway


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_an_approved_payment_returns_its_key_and_approval_time(
    fake: FakeGateway, client: HttpPaymentGateway
) -> None:
    before = datetime.now(UTC)

    approval = client.confirm("r-1", 30000, "Wicked x2")

    assert approval.payment_key == fake.payment_key_of("r-1")
    assert before - timedelta(seconds=1) <= approval.approved_at <= datetime.now(UTC)


def test_confirm_sends_the_order_as_its_idempotency_key_and_the_documented_body(
    fake: FakeGateway, client: HttpPaymentGateway
) -> None:
    client.confirm("r-1", 30000, "Wicked x2")

    [call] = fake.confirm_calls()
    assert call.method == "POST"
    assert call.idempotency_key == "r-1"
    assert call.body == {"orderId": "r-1", "amount": 30000, "orderName": "Wicked x2"}
    assert "authorization" not in call.headers


def test_a_secret_key_goes_in_basic_auth_as_the_user_name(fake: FakeGateway) -> None:
    with HttpPaymentGateway(fake.url, TIMEOUT_SECONDS, secret_key="test_sk_123") as client:
        client.confirm("r-1", 1000, "Cats")

    [call] = fake.confirm_calls()
    assert call.headers["authorization"] == "Basic " + base64.b64encode(b"test_sk_123:").decode()


def test_the_client_is_built_from_the_app_settings(fake: FakeGateway) -> None:
    settings = Settings(PAYMENT_GATEWAY_URL=fake.url, PAYMENT_GATEWAY_SECRET_KEY="sk")

    with HttpPaymentGateway.from_settings(settings) as client:
        client.confirm("r-1", 1000, "Cats")

    assert fake.confirm_calls()[0].headers["authorization"] == "Basic c2s6"


def test_confirming_the_same_order_again_returns_the_same_key_and_charges_once(
    fake: FakeGateway, client: HttpPaymentGateway
) -> None:
    first = client.confirm("r-1", 30000, "Wicked x2")
    again = client.confirm("r-1", 30000, "Wicked x2")

    assert again.payment_key == first.payment_key
    assert len(fake.confirm_calls()) == 2
    assert fake.charges_per_order() == {"r-1": 1}


def test_a_declined_payment_raises_the_gateways_code_and_message(
    fake: FakeGateway, client: HttpPaymentGateway
) -> None:
    fake.set_mode("decline")

    with pytest.raises(PaymentDeclined) as declined:
        client.confirm("r-1", 30000, "Wicked x2")

    assert (declined.value.code, declined.value.message) == ("REJECT_CARD_PAYMENT", "card refused")
    assert fake.approved_orders() == set()


CARD_DECLINE_CODES = [
    "REJECT_CARD_PAYMENT",
    "REJECT_CARD_COMPANY",
    "INVALID_CARD_EXPIRATION",
    "INVALID_STOPPED_CARD",
    "INVALID_CARD_LOST_OR_STOLEN",
    "EXCEED_MAX_DAILY_PAYMENT_COUNT",
    "EXCEED_MAX_PAYMENT_AMOUNT",
    "NOT_AVAILABLE_PAYMENT",
]


def error_body(code: str) -> bytes:
    return json.dumps({"code": code, "message": f"{code} happened"}).encode()


@pytest.mark.parametrize("code", CARD_DECLINE_CODES)
@pytest.mark.parametrize("status", [400, 403])
def test_every_card_decline_code_declines(
    fake: FakeGateway, client: HttpPaymentGateway, code: str, status: int
) -> None:
    fake.script(status, error_body(code), "application/json")

    with pytest.raises(PaymentDeclined) as declined:
        client.confirm("r-1", 30000, "Wicked x2")

    assert declined.value.code == code


# (status, body) → the exception a confirm raises: nothing here is a decline.
CONFIRM_UNKNOWN_OUTCOMES = [
    (400, error_body("ALREADY_PROCESSED_PAYMENT"), AlreadyProcessed),
    (409, error_body("IDEMPOTENT_REQUEST_PROCESSING"), StillProcessing),
    (401, error_body("UNAUTHORIZED_KEY"), MerchantRejected),
    (403, error_body("FORBIDDEN_REQUEST"), MerchantRejected),
    (400, error_body("INVALID_REQUEST"), GatewayUnavailable),
    (404, error_body("NOT_FOUND_PAYMENT"), GatewayUnavailable),
    (403, b"<html>Forbidden</html>", GatewayUnavailable),
    (422, error_body("SOMETHING_NEW"), GatewayUnavailable),
    (500, error_body("PROVIDER_ERROR"), GatewayUnavailable),
    (502, b"Bad Gateway", GatewayUnavailable),
]


@pytest.mark.parametrize(("status", "body", "raised"), CONFIRM_UNKNOWN_OUTCOMES)
def test_a_confirm_answer_that_is_not_a_card_decline_leaves_the_outcome_unknown(
    fake: FakeGateway,
    client: HttpPaymentGateway,
    status: int,
    body: bytes,
    raised: type[Exception],
) -> None:
    fake.script(status, body, "application/json")

    with pytest.raises(OutcomeUnknown) as unknown:
        client.confirm("r-1", 30000, "Wicked x2")

    assert type(unknown.value) is raised
    assert not isinstance(unknown.value, GatewayNotReached)


def test_a_merchant_error_is_logged_for_operators(
    fake: FakeGateway, client: HttpPaymentGateway, caplog: pytest.LogCaptureFixture
) -> None:
    fake.set_mode("merchant_refused")

    with caplog.at_level(logging.ERROR), pytest.raises(MerchantRejected):
        client.confirm("r-1", 30000, "Wicked x2")

    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "UNAUTHORIZED_KEY" in record.getMessage()
    assert "PAYMENT_GATEWAY_SECRET_KEY" in record.getMessage()


def test_a_lookup_returns_the_orders_payment(fake: FakeGateway, client: HttpPaymentGateway) -> None:
    approval = client.confirm("r/1", 30000, "Wicked x2")

    found = client.lookup("r/1")

    assert found == GatewayPayment(approval.payment_key, "r/1", "DONE", 30000, 30000)
    assert fake.lookup_calls()[0].path == "/v1/payments/orders/r%2F1"


def test_a_lookup_of_an_order_never_charged_answers_none(
    fake: FakeGateway, client: HttpPaymentGateway
) -> None:
    assert client.lookup("r-1") is None


@pytest.mark.parametrize(
    ("status", "body", "raised"),
    [
        (404, error_body("NOT_FOUND"), GatewayUnavailable),  # a route's 404 says nothing
        (401, error_body("UNAUTHORIZED_KEY"), MerchantRejected),
        (500, b"", GatewayUnavailable),
        (200, b'{"paymentKey": "pk"}', GatewayUnavailable),
    ],
)
def test_a_lookup_that_cannot_say_leaves_the_outcome_unknown(
    fake: FakeGateway,
    client: HttpPaymentGateway,
    status: int,
    body: bytes,
    raised: type[Exception],
) -> None:
    fake.script(status, body, "application/json")

    with pytest.raises(raised):
        client.lookup("r-1")


def test_a_partial_cancel_sends_its_amount_and_leaves_the_rest_charged(
    fake: FakeGateway, client: HttpPaymentGateway
) -> None:
    approval = client.confirm("r-1", 30000, "Wicked x2")

    client.cancel(approval.payment_key, "fee kept", "r-1.cancel", cancel_amount=21000)

    assert fake.cancel_calls()[0].body == {"cancelReason": "fee kept", "cancelAmount": 21000}
    assert fake.payment_status(approval.payment_key) == "PARTIAL_CANCELED"
    assert fake.balance_of("r-1") == 9000


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (409, error_body("IDEMPOTENT_REQUEST_PROCESSING")),
        (404, error_body("NOT_FOUND_PAYMENT")),
        (403, error_body("REJECT_CARD_PAYMENT")),
        (400, error_body("INVALID_CANCEL_AMOUNT")),
        (200, b'{"paymentKey": "pk", "status": "DONE"}'),
    ],
)
def test_a_cancel_answered_anything_but_success_leaves_the_outcome_unknown(
    fake: FakeGateway, client: HttpPaymentGateway, status: int, body: bytes
) -> None:
    fake.script(status, body, "application/json")

    with pytest.raises(OutcomeUnknown):
        client.cancel("pk", "customer cancelled", idempotency_key="r-1.cancel")


def test_the_secret_key_is_never_sent_over_plain_http_beyond_this_machine() -> None:
    settings = Settings(
        PAYMENT_GATEWAY_URL="http://gateway.example.com", PAYMENT_GATEWAY_SECRET_KEY="live_sk"
    )

    with pytest.raises(ValueError, match="https"):
        HttpPaymentGateway.from_settings(settings)


@pytest.mark.parametrize(
    "url",
    ["https://api.tosspayments.com", "http://127.0.0.1:9", "http://[::1]:9", "http://localhost:9"],
)
def test_the_secret_key_goes_over_https_or_to_loopback(url: str) -> None:
    settings = Settings(PAYMENT_GATEWAY_URL=url, PAYMENT_GATEWAY_SECRET_KEY="sk")

    HttpPaymentGateway.from_settings(settings).close()


def test_without_a_secret_key_plain_http_is_allowed_anywhere() -> None:
    HttpPaymentGateway.from_settings(Settings(PAYMENT_GATEWAY_URL="http://sim.internal:80")).close()


@pytest.mark.parametrize("status", [408, 429])
def test_timeouts_and_throttling_answered_as_4xx_mean_try_later(
    fake: FakeGateway, client: HttpPaymentGateway, status: int
) -> None:
    fake.script(status, b'{"code": "TOO_MANY_REQUESTS", "message": "slow down"}')

    with pytest.raises(GatewayUnavailable):
        client.confirm("r-1", 30000, "Wicked x2")


def test_a_503_means_the_gateway_is_unavailable(
    fake: FakeGateway, client: HttpPaymentGateway
) -> None:
    fake.set_mode("down")

    with pytest.raises(GatewayUnavailable):
        client.confirm("r-1", 30000, "Wicked x2")

    assert len(fake.confirm_calls()) == 1
    assert fake.approved_orders() == set()


def test_an_approval_with_an_unexpected_body_means_try_later(
    fake: FakeGateway, client: HttpPaymentGateway
) -> None:
    fake.script(200, b'{"status": "IN_PROGRESS"}', "application/json")

    with pytest.raises(GatewayUnavailable):
        client.confirm("r-1", 30000, "Wicked x2")


def test_a_refused_connection_means_not_reached_until_the_gateway_listens_again(
    fake: FakeGateway, client: HttpPaymentGateway
) -> None:
    client.confirm("r-0", 1000, "warm the connection pool")
    fake.set_mode("refusing")

    with pytest.raises(GatewayNotReached):
        client.confirm("r-1", 30000, "Wicked x2")

    fake.set_mode("up")
    assert client.confirm("r-1", 30000, "Wicked x2").payment_key == fake.payment_key_of("r-1")
    assert [call.body["orderId"] for call in fake.confirm_calls()] == ["r-0", "r-1"]


def test_a_timeout_means_unavailable_and_the_retry_gets_the_payment_the_gateway_made(
    fake: FakeGateway, client: HttpPaymentGateway
) -> None:
    fake.set_mode("slow")

    started = time.monotonic()
    with pytest.raises(GatewayUnavailable) as timed_out:
        client.confirm("r-1", 30000, "Wicked x2")
    assert not isinstance(timed_out.value, GatewayNotReached)  # it may have charged
    assert time.monotonic() - started < fake.slow_seconds

    wait_until(lambda: "r-1" in fake.approved_orders())
    fake.set_mode("up")
    retried = client.confirm("r-1", 30000, "Wicked x2")

    assert retried.payment_key == fake.payment_key_of("r-1")
    assert fake.charges_per_order() == {"r-1": 1}


_APPROVAL = (
    b'{"paymentKey": "pk-1", "orderId": "r-1", "status": "DONE",'
    b' "approvedAt": "2026-12-01T10:00:00+00:00"}'
)
APPROVED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    + b"Content-Length: %d\r\n\r\n" % len(_APPROVAL)
    + _APPROVAL
)
"""A gateway's approval, as raw bytes for the hand-made servers below."""


def test_a_kept_alive_connection_the_gateway_closed_is_replaced_and_the_call_made_once() -> None:
    """A gateway that closes each connection after answering, without saying so: the next
    call finds its connection dead and sends again, once, on a new one."""
    received: list[bytes] = []

    def serve(listener: socket.socket) -> None:
        for _ in range(2):
            connection, _ = listener.accept()
            with connection:
                received.append(connection.recv(65536))
                connection.sendall(APPROVED)

    with socket.create_server(("127.0.0.1", 0)) as listener:
        server = threading.Thread(target=serve, args=(listener,), daemon=True)
        server.start()
        port = listener.getsockname()[1]
        with HttpPaymentGateway(f"http://127.0.0.1:{port}", TIMEOUT_SECONDS) as client:
            first = client.confirm("r-1", 1000, "Cats")
            time.sleep(0.1)  # the gateway has closed the connection by now
            second = client.confirm("r-1", 1000, "Cats")
        server.join(5)

    assert first.payment_key == second.payment_key == "pk-1"
    assert len(received) == 2


def read_request(stream: BinaryIO) -> None:
    """One whole HTTP request (headers, then Content-Length bytes of body)."""
    length = 0
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    stream.read(length)


def test_a_call_cut_off_after_it_was_sent_may_have_reached_the_gateway() -> None:
    """The gateway reads the request on a kept-alive connection, then goes away without an
    answer: it may have charged, so a failed resend is "unavailable", never "not reached"
    (which would let a cancel conclude that nothing was charged)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        with connection, connection.makefile("rb") as requests:
            read_request(requests)
            connection.sendall(APPROVED)
            read_request(requests)  # the second call arrives...
            listener.close()  # ...and the gateway goes away without answering it

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    with HttpPaymentGateway(f"http://127.0.0.1:{port}", TIMEOUT_SECONDS) as client:
        client.confirm("r-1", 1000, "Cats")
        with pytest.raises(GatewayUnavailable) as raised:
            client.confirm("r-2", 1000, "Cats")
    server.join(5)

    assert not isinstance(raised.value, GatewayNotReached)


def test_cancel_sends_its_reason_and_idempotency_key_and_cancels_the_payment(
    fake: FakeGateway, client: HttpPaymentGateway
) -> None:
    approval = client.confirm("r-1", 30000, "Wicked x2")

    client.cancel(approval.payment_key, "customer cancelled", idempotency_key="cancel-r-1")

    [call] = fake.cancel_calls()
    assert call.path == f"/v1/payments/{approval.payment_key}/cancel"
    assert call.idempotency_key == "cancel-r-1"
    assert call.body == {"cancelReason": "customer cancelled"}
    assert fake.payment_status(approval.payment_key) == "CANCELED"


def test_cancelling_twice_succeeds_twice(fake: FakeGateway, client: HttpPaymentGateway) -> None:
    approval = client.confirm("r-1", 30000, "Wicked x2")

    client.cancel(approval.payment_key, "customer cancelled", idempotency_key="cancel-r-1")
    client.cancel(approval.payment_key, "customer cancelled", idempotency_key="cancel-r-2")

    assert fake.payment_status(approval.payment_key) == "CANCELED"
    assert fake.balance_of("r-1") == 0


def test_a_cancel_the_gateway_says_was_already_done_is_a_success(
    fake: FakeGateway, client: HttpPaymentGateway
) -> None:
    fake.script(400, b'{"code": "ALREADY_CANCELED_PAYMENT", "message": "already"}')

    client.cancel("pay_1", "customer cancelled", idempotency_key="cancel-r-1")

    assert len(fake.cancel_calls()) == 1


@pytest.mark.parametrize("mode", ["down", "refusing", "slow"])
def test_a_cancel_while_the_gateway_fails_means_try_later(
    fake: FakeGateway, client: HttpPaymentGateway, mode: str
) -> None:
    approval = client.confirm("r-1", 30000, "Wicked x2")
    fake.set_mode(mode)  # type: ignore[arg-type]

    with pytest.raises(GatewayUnavailable):
        client.cancel(approval.payment_key, "customer cancelled", idempotency_key="cancel-r-1")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteDocumentStore]:
    store = SqliteDocumentStore(tmp_path / "data")
    yield store
    store.close()


def test_behind_the_breaker_a_down_gateway_gets_a_bounded_number_of_calls(
    fake: FakeGateway, client: HttpPaymentGateway, store: SqliteDocumentStore
) -> None:
    config = BreakerConfig(failure_threshold=3, open_seconds=10, cache_seconds=1)
    clock = ManualClock()
    guarded = GuardedPaymentGateway(client, CircuitBreaker(store, config, clock=clock))
    fake.set_mode("down")

    for attempt in range(20):
        with pytest.raises(GatewayUnavailable):
            guarded.confirm(f"r-{attempt}", 1000, "Cats")
    assert len(fake.confirm_calls()) == config.failure_threshold

    fake.set_mode("up")
    with pytest.raises(BreakerOpen):
        guarded.confirm("r-0", 1000, "Cats")
    clock.advance(config.open_seconds)
    for attempt in range(20):
        guarded.confirm(f"r-{attempt}", 1000, "Cats")

    assert len(fake.confirm_calls()) == config.failure_threshold + 20
    assert fake.approved_orders() == {f"r-{attempt}" for attempt in range(20)}
