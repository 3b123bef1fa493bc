"""A local simulator of the payment gateway (docs/payment-gateway.md), served by uvicorn.

`python -m devhost` runs one in a process of its own when `PAYMENT_GATEWAY_URL` is unset
(`python -m devhost.gateway_simulator --fd N`, on a socket devhost bound); tests start one in a
thread:

    simulator = start_simulator()          # 127.0.0.1, a free port
    ... PAYMENT_GATEWAY_URL = simulator.url ...
    simulator.stop()

API:

- `POST /v1/payments/confirm`, `Idempotency-Key` header, `{orderId, amount, orderName}` →
  200 Payment (`DONE`), 403 `REJECT_CARD_PAYMENT`, or 400 `ALREADY_PROCESSED_PAYMENT` when the
  order was charged before under another key or by a call whose answer was not stored.
- `GET /v1/payments/orders/{orderId}` → 200 Payment, or 404 `NOT_FOUND_PAYMENT`.
- `POST /v1/payments/{paymentKey}/cancel`, `{cancelReason, cancelAmount?}` → 200 Payment
  (`CANCELED`, or `PARTIAL_CANCELED` with `balanceAmount` left); 400
  `ALREADY_CANCELED_PAYMENT` when nothing is left; 404 `NOT_FOUND_PAYMENT` for an unknown key.
- `GET /v1/payments/{paymentKey}` → the payment, to look at during a demo.

Payment: `{paymentKey, orderId, status, totalAmount, balanceAmount, approvedAt}`. A completed
call's answer (a 200, a card decline, `ALREADY_CANCELED_PAYMENT`) is stored per
`Idempotency-Key` and replayed; a key reused for another order or amount → 422
`INVALID_IDEMPOTENCY_KEY`; while a call with a key is in flight (it waits its latency), another
with that key gets 409 `IDEMPOTENT_REQUEST_PROCESSING`. Payments live in memory; a restart
forgets them.

Declines (403 `REJECT_CARD_PAYMENT`), so that demos and tests can provoke one on purpose:

- always when `orderName` contains `DECLINE` (any case), or the amount ends in 13
  (`amount % 100 == 13`, e.g. one seat at 10013);
- otherwise at random with probability `GATEWAY_SIM_DECLINE_RATE` (0..1, default 0).

The awkward gateway, on purpose (environment variables, read at start):

- `GATEWAY_SIM_LOSE_ANSWER_RATE` (0..1, default 0): a confirm charges, then answers 500 (not
  stored: the repeat answers `ALREADY_PROCESSED_PAYMENT`);
- `GATEWAY_SIM_MERCHANT_KEY_REFUSED` (default false): every call answers 401
  `UNAUTHORIZED_KEY`;
- `GATEWAY_SIM_UNKNOWN_CODE_RATE` (0..1, default 0): a call answers 400 with a code the
  contract does not list, and does nothing.

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
    lose_answer_rate: float = Field(0.0, alias="GATEWAY_SIM_LOSE_ANSWER_RATE", ge=0, le=1)
    merchant_key_refused: bool = Field(False, alias="GATEWAY_SIM_MERCHANT_KEY_REFUSED")
    unknown_code_rate: float = Field(0.0, alias="GATEWAY_SIM_UNKNOWN_CODE_RATE", ge=0, le=1)


@dataclass(frozen=True)
class Awkwardness:
    """How often the simulator misbehaves on purpose (see the module docstring)."""

    lose_answer_rate: float = 0.0
    merchant_key_refused: bool = False
    unknown_code_rate: float = 0.0


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, strict=True)


R = TypeVar("R", bound=_Wire)


class ConfirmRequest(_Wire):
    order_id: str = Field(min_length=1)
    amount: int = Field(ge=0)
    order_name: str


class CancelRequest(_Wire):
    cancel_reason: str
    cancel_amount: int | None = Field(None, gt=0)


@dataclass
class Payment:
    payment_key: str
    order_id: str
    amount: int
    order_name: str
    approved_at: str
    balance: int
    cancel_reason: str | None = None

    @property
    def status(self) -> Literal["DONE", "CANCELED", "PARTIAL_CANCELED"]:
        if self.balance == self.amount:
            return "DONE"
        return "CANCELED" if self.balance == 0 else "PARTIAL_CANCELED"

    def as_json(self) -> dict[str, Any]:
        return {
            "paymentKey": self.payment_key,
            "orderId": self.order_id,
            "orderName": self.order_name,
            "status": self.status,
            "totalAmount": self.amount,
            "balanceAmount": self.balance,
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

    def __init__(
        self, decline_rate: float, rng: random.Random, awkward: Awkwardness | None = None
    ) -> None:
        self._decline_rate = decline_rate
        self._rng = rng
        self._awkward = awkward or Awkwardness()
        self._answers: dict[str, tuple[tuple[str, int], Answer]] = {}
        self._in_flight: set[str] = set()
        self._payments: dict[str, Payment] = {}
        self._by_order: dict[str, Payment] = {}

    def refusal(self) -> Answer | None:
        """An answer made before anything is done: the awkward switches that do nothing."""
        if self._awkward.merchant_key_refused:
            return _error(401, "UNAUTHORIZED_KEY", "the merchant's secret key is refused")
        if self._rng.random() < self._awkward.unknown_code_rate:
            return _error(400, "SIMULATED_UNKNOWN_CODE", "an answer the gateway API does not list")
        return None

    def begin(self, key: str, fingerprint: tuple[str, int]) -> Answer | None:
        """Before a call with `key`: its stored answer, 409 while in flight, or None: go on."""
        earlier = self._answers.get(key)
        if earlier is not None:
            first, answer = earlier
            if first != fingerprint:
                return _error(422, "INVALID_IDEMPOTENCY_KEY", "key reused for another payment")
            return answer
        if key in self._in_flight:
            return _error(409, "IDEMPOTENT_REQUEST_PROCESSING", "a call with this key is running")
        self._in_flight.add(key)
        return None

    def end(self, key: str, fingerprint: tuple[str, int], answer: Answer, stored: bool) -> None:
        self._in_flight.discard(key)
        if stored:
            self._answers[key] = (fingerprint, answer)

    def confirm(self, request: ConfirmRequest) -> tuple[Answer, bool]:
        """The answer, and whether it is stored for replay."""
        if request.order_id in self._by_order:
            return _error(400, "ALREADY_PROCESSED_PAYMENT", "this order was paid before"), False
        if is_declined_on_purpose(request.order_name, request.amount) or (
            self._rng.random() < self._decline_rate
        ):
            return _error(403, "REJECT_CARD_PAYMENT", "the card issuer refused the payment"), True
        payment = Payment(
            payment_key=f"sim_{uuid.uuid4().hex}",
            order_id=request.order_id,
            amount=request.amount,
            order_name=request.order_name,
            approved_at=datetime.now(UTC).isoformat(),
            balance=request.amount,
        )
        self._payments[payment.payment_key] = payment
        self._by_order[payment.order_id] = payment
        if self._rng.random() < self._awkward.lose_answer_rate:
            return _error(500, "PROVIDER_ERROR", "simulated: the answer was lost"), False
        return Answer(200, payment.as_json()), True

    def cancel(self, payment_key: str, request: CancelRequest) -> tuple[Answer, bool]:
        payment = self._payments.get(payment_key)
        if payment is None:
            return _error(404, "NOT_FOUND_PAYMENT", f"no payment {payment_key}"), False
        if payment.balance == 0:
            return _error(400, "ALREADY_CANCELED_PAYMENT", "nothing left to cancel"), True
        amount = request.cancel_amount or payment.balance
        if amount > payment.balance:
            return _error(400, "INVALID_CANCEL_AMOUNT", "more than the balance"), False
        payment.balance -= amount
        payment.cancel_reason = request.cancel_reason
        return Answer(200, payment.as_json()), True

    def get(self, payment_key: str) -> Answer:
        payment = self._payments.get(payment_key)
        if payment is None:
            return _error(404, "NOT_FOUND_PAYMENT", f"no payment {payment_key}")
        return Answer(200, payment.as_json())

    def lookup(self, order_id: str) -> Answer:
        payment = self._by_order.get(order_id)
        if payment is None:
            return _error(404, "NOT_FOUND_PAYMENT", f"no payment for order {order_id}")
        return Answer(200, payment.as_json())


class GatewaySimulatorApp:
    """The ASGI app: routing, JSON in and out, latency."""

    _PREFIX = "/v1/payments/"
    _CANCEL = "/cancel"
    _ORDERS = "orders/"

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
        answer = await self._route(
            scope["method"], scope["path"], headers.get("idempotency-key"), raw
        )
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

    async def _route(self, method: str, path: str, key: str | None, raw: bytes) -> Answer:
        refused = self._ledger.refusal()
        if refused is not None:
            await self._wait()
            return refused
        if path == "/v1/payments/confirm":
            if method != "POST":
                return _error(405, "METHOD_NOT_ALLOWED", method)
            request = _parsed(ConfirmRequest, raw)
            if isinstance(request, Answer):
                return request
            return await self._once(
                key or request.order_id,
                (request.order_id, request.amount),
                lambda: self._ledger.confirm(request),
            )
        if not path.startswith(self._PREFIX):
            return _error(404, "NOT_FOUND", path)
        rest = path[len(self._PREFIX) :]
        if rest.endswith(self._CANCEL):
            if method != "POST":
                return _error(405, "METHOD_NOT_ALLOWED", method)
            payment_key = unquote(rest[: -len(self._CANCEL)])
            cancel = _parsed(CancelRequest, raw)
            if isinstance(cancel, Answer):
                return cancel
            return await self._once(
                key or f"{payment_key}.cancel",
                (payment_key, cancel.cancel_amount or 0),
                lambda: self._ledger.cancel(payment_key, cancel),
            )
        await self._wait()
        if method != "GET":
            return _error(404, "NOT_FOUND", path)
        if rest.startswith(self._ORDERS):
            return self._ledger.lookup(unquote(rest[len(self._ORDERS) :]))
        if "/" in rest:
            return _error(404, "NOT_FOUND", path)
        return self._ledger.get(unquote(rest))

    async def _once(
        self, key: str, fingerprint: tuple[str, int], run: Callable[[], tuple[Answer, bool]]
    ) -> Answer:
        """A keyed call: replayed, refused while in flight, or run after the latency."""
        early = self._ledger.begin(key, fingerprint)
        if early is not None:
            await self._wait()
            return early
        answer, stored = Answer(500, {"code": "PROVIDER_ERROR", "message": "interrupted"}), False
        try:
            await self._wait()
            answer, stored = run()
        finally:
            self._ledger.end(key, fingerprint, answer, stored)
        return answer

    async def _wait(self) -> None:
        if self._latency_seconds:
            await asyncio.sleep(self._latency_seconds)


def _parsed(model: type[R], raw: bytes) -> R | Answer:
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        return _error(400, "INVALID_REQUEST", str(error.errors(include_url=False)))


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
    awkward: Awkwardness | None = None,
) -> RunningSimulator:
    """Serve the simulator on host:port (0 = a free port) in a thread, until `.stop()`.

    `latency_ms` and `decline_rate` default to the GATEWAY_SIM_* environment variables.
    """
    listener = listening_socket(host, port)
    server = simulator_server(latency_ms, decline_rate, rng, awkward)
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
    awkward: Awkwardness | None = None,
) -> uvicorn.Server:
    settings = SimulatorSettings()
    latency = settings.latency_ms if latency_ms is None else latency_ms
    ledger = PaymentLedger(
        settings.decline_rate if decline_rate is None else decline_rate,
        rng or random.Random(),
        awkward
        or Awkwardness(
            lose_answer_rate=settings.lose_answer_rate,
            merchant_key_refused=settings.merchant_key_refused,
            unknown_code_rate=settings.unknown_code_rate,
        ),
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
