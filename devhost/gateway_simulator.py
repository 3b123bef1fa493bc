"""A local simulator of the payment gateway of CONTRACT §4, served by uvicorn.

`python -m devhost` runs one in a process of its own when `PAYMENT_GATEWAY_URL` is unset
(`python -m devhost.gateway_simulator --fd N`, on a socket devhost bound); tests start one in a
thread:

    simulator = start_simulator()          # 127.0.0.1, a free port
    ... PAYMENT_GATEWAY_URL = simulator.url ...
    simulator.stop()

API:

- `POST /v1/payments/confirm`, `Idempotency-Key` header, `{orderId, amount, orderName}` →
  200 `{paymentKey, orderId, status: "DONE", approvedAt}`, or 4xx `{code, message}`.
- `POST /v1/payments/{paymentKey}/cancel`, `{cancelReason}` → 200 `{paymentKey, status:
  "CANCELED"}`; 404 `NOT_FOUND_PAYMENT` for an unknown key.
- `GET /v1/payments/{paymentKey}` → the payment, to look at during a demo.

Never charged twice: a confirm repeated with the same `Idempotency-Key` (or, without the
header, the same orderId) gets the first answer again, approval or decline; and an order that
already has a payment gets that payment back whatever the key. A key reused for a different
order or amount → 422 `INVALID_IDEMPOTENCY_KEY`. Cancelling twice answers 200 both times.
Payments live in memory with status DONE or CANCELED; a restart forgets them.

Declines (403 `REJECT_CARD_PAYMENT`), so that demos and tests can provoke one on purpose:

- always when `orderName` contains `DECLINE` (any case), or the amount ends in 13
  (`amount % 100 == 13`, e.g. one seat at 10013);
- otherwise at random with probability `GATEWAY_SIM_DECLINE_RATE` (0..1, default 0).

Every answer waits `GATEWAY_SIM_LATENCY_MS` first (default 20).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from urllib.parse import unquote

import uvicorn
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_settings import BaseSettings, SettingsConfigDict

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DECLINE_WORD = "DECLINE"
DECLINE_AMOUNT_ENDING = 13
STARTUP_TIMEOUT_SECONDS = 10.0


class SimulatorSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    latency_ms: int = Field(20, alias="GATEWAY_SIM_LATENCY_MS", ge=0)
    decline_rate: float = Field(0.0, alias="GATEWAY_SIM_DECLINE_RATE", ge=0, le=1)


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, strict=True)


R = TypeVar("R", bound=_Wire)


class ConfirmRequest(_Wire):
    order_id: str = Field(min_length=1)
    amount: int = Field(ge=0)
    order_name: str


class CancelRequest(_Wire):
    cancel_reason: str
    cancel_amount: int | None = Field(default=None, ge=1)


@dataclass
class Payment:
    payment_key: str
    order_id: str
    amount: int
    order_name: str
    approved_at: str
    status: Literal["DONE", "CANCELED", "PARTIAL_CANCELED"] = "DONE"
    cancel_reason: str | None = None
    cancelled_amount: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "paymentKey": self.payment_key,
            "orderId": self.order_id,
            "orderName": self.order_name,
            "totalAmount": self.amount,
            "balanceAmount": self.amount - self.cancelled_amount,
            "status": self.status,
            "approvedAt": self.approved_at,
            "cancelReason": self.cancel_reason,
        }


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


def is_declined_on_purpose(order_name: str, amount: int) -> bool:
    """The deterministic decline rule of the module docstring."""
    return DECLINE_WORD in order_name.upper() or amount % 100 == DECLINE_AMOUNT_ENDING


def _error(status: int, code: str, message: str) -> Answer:
    return Answer(status, {"code": code, "message": message})


class PaymentLedger:
    """The simulator's payments, in memory. Called on the event loop only, so never at once."""

    def __init__(self, decline_rate: float, rng: random.Random) -> None:
        self._decline_rate = decline_rate
        self._rng = rng
        self._answers: dict[str, tuple[ConfirmRequest, Answer]] = {}
        self._payments: dict[str, Payment] = {}
        self._by_order: dict[str, Payment] = {}

    def confirm(self, idempotency_key: str | None, request: ConfirmRequest) -> Answer:
        key = idempotency_key or request.order_id
        earlier = self._answers.get(key)
        if earlier is not None:
            first_request, answer = earlier
            if (first_request.order_id, first_request.amount) != (
                request.order_id,
                request.amount,
            ):
                return _error(422, "INVALID_IDEMPOTENCY_KEY", "key reused for another payment")
            return answer
        answer = self._decide(request)
        self._answers[key] = (request, answer)
        return answer

    def cancel(self, payment_key: str, request: CancelRequest) -> Answer:
        payment = self._payments.get(payment_key)
        if payment is None:
            return _error(404, "NOT_FOUND_PAYMENT", f"no payment {payment_key}")
        if payment.status != "CANCELED":
            balance = payment.amount - payment.cancelled_amount
            refund = balance if request.cancel_amount is None else request.cancel_amount
            if refund > balance:
                return _error(400, "INVALID_CANCEL_AMOUNT", "more than the balance")
            payment.cancelled_amount += refund
            payment.status = "CANCELED" if refund == balance else "PARTIAL_CANCELED"
            payment.cancel_reason = request.cancel_reason
        return Answer(200, {"paymentKey": payment_key, "status": payment.status})

    def get(self, payment_key: str) -> Answer:
        payment = self._payments.get(payment_key)
        if payment is None:
            return _error(404, "NOT_FOUND_PAYMENT", f"no payment {payment_key}")
        return Answer(200, payment.as_json())

    def _decide(self, request: ConfirmRequest) -> Answer:
        payment = self._by_order.get(request.order_id)
        if payment is None:
            if is_declined_on_purpose(request.order_name, request.amount) or (
                self._rng.random() < self._decline_rate
            ):
                return _error(403, "REJECT_CARD_PAYMENT", "the card issuer refused the payment")
            payment = Payment(
                payment_key=f"sim_{uuid.uuid4().hex}",
                order_id=request.order_id,
                amount=request.amount,
                order_name=request.order_name,
                approved_at=datetime.now(UTC).isoformat(),
            )
            self._payments[payment.payment_key] = payment
            self._by_order[payment.order_id] = payment
        return Answer(
            200,
            {
                "paymentKey": payment.payment_key,
                "orderId": payment.order_id,
                "status": "DONE",
                "approvedAt": payment.approved_at,
            },
        )


class GatewaySimulatorApp:
    """The ASGI app: routing, JSON in and out, latency."""

    _PREFIX = "/v1/payments/"
    _CANCEL = "/cancel"

    def __init__(self, ledger: PaymentLedger, latency_seconds: float) -> None:
        self._ledger = ledger
        self._latency_seconds = latency_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = await _read_body(receive)
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        answer = self._route(scope["method"], scope["path"], headers.get("idempotency-key"), raw)
        if self._latency_seconds:
            await asyncio.sleep(self._latency_seconds)
        payload = json.dumps(answer.body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _route(self, method: str, path: str, key: str | None, raw: bytes) -> Answer:
        if path == "/v1/payments/confirm":
            if method != "POST":
                return _error(405, "METHOD_NOT_ALLOWED", method)
            return _parsed(ConfirmRequest, raw, lambda request: self._ledger.confirm(key, request))
        if not path.startswith(self._PREFIX):
            return _error(404, "NOT_FOUND", path)
        rest = path[len(self._PREFIX) :]
        if rest.endswith(self._CANCEL):
            if method != "POST":
                return _error(405, "METHOD_NOT_ALLOWED", method)
            payment_key = unquote(rest[: -len(self._CANCEL)])
            return _parsed(
                CancelRequest, raw, lambda request: self._ledger.cancel(payment_key, request)
            )
        if method != "GET" or "/" in rest:
            return _error(404, "NOT_FOUND", path)
        return self._ledger.get(unquote(rest))


def _parsed(model: type[R], raw: bytes, handle: Callable[[R], Answer]) -> Answer:
    try:
        request = model.model_validate_json(raw)
    except ValidationError as error:
        return _error(400, "INVALID_REQUEST", str(error.errors(include_url=False)))
    return handle(request)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


@dataclass
class RunningSimulator:
    url: str
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=STARTUP_TIMEOUT_SECONDS)


def start_simulator(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    latency_ms: int | None = None,
    decline_rate: float | None = None,
    rng: random.Random | None = None,
) -> RunningSimulator:
    """Serve the simulator on host:port (0 = a free port) in a thread, until `.stop()`.

    `latency_ms` and `decline_rate` default to the GATEWAY_SIM_* environment variables.
    """
    listener = listening_socket(host, port)
    server = simulator_server(latency_ms, decline_rate, rng)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="gateway-simulator", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the payment gateway simulator did not start on {host}:{port}")
        time.sleep(0.01)
    return RunningSimulator(url_of(listener), server, thread)


def listening_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A socket bound to host:port (0 = a free port), for the simulator to serve on."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    return listener


def url_of(listener: socket.socket) -> str:
    host, port = listener.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def simulator_server(
    latency_ms: int | None = None,
    decline_rate: float | None = None,
    rng: random.Random | None = None,
) -> uvicorn.Server:
    settings = SimulatorSettings()
    latency = settings.latency_ms if latency_ms is None else latency_ms
    ledger = PaymentLedger(
        settings.decline_rate if decline_rate is None else decline_rate, rng or random.Random()
    )
    config = uvicorn.Config(
        GatewaySimulatorApp(ledger, latency / 1000),
        lifespan="off",
        access_log=False,
        log_level="warning",
        log_config=None,
    )
    return uvicorn.Server(config)


def main(argv: list[str] | None = None) -> int:
    """Serve on an inherited, bound socket until SIGTERM (or the lifeline ends)."""
    parser = argparse.ArgumentParser(prog="python -m devhost.gateway_simulator")
    parser.add_argument("--fd", type=int, required=True, help="a bound socket to serve on")
    parser.add_argument("--lifeline", type=int, help="a pipe whose end means: stop")
    args = parser.parse_args(argv)

    from devhost.lifeline import watch_lifeline
    from devhost.log_setup import configure_host_logging

    configure_host_logging("gateway")
    server = simulator_server()
    if args.lifeline is not None:
        watch_lifeline(args.lifeline, lambda: os._exit(0))
    server.run(sockets=[socket.socket(fileno=args.fd)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
