"""A payment gateway for tests: the API of docs/payment-gateway.md over real HTTP, with
switchable failures.

    with FakeGateway() as gateway:          # listens on a free port of 127.0.0.1
        os.environ["PAYMENT_GATEWAY_URL"] = gateway.url   # or pass it to a devhost subprocess
        gateway.set_mode("down")            # every call answers 503
        ...
        assert gateway.charges_per_order() == {"r-1": 1}

It keeps the contract's rules in every mode that answers: a completed call's answer (a 200, a
card decline, `ALREADY_CANCELED_PAYMENT`) is stored per `Idempotency-Key` and replayed; a call
whose key is in flight gets 409 `IDEMPOTENT_REQUEST_PROCESSING`; a confirm of an order charged
before, whose answer was not stored (lost) or under another key, gets 400
`ALREADY_PROCESSED_PAYMENT`; `GET /v1/payments/orders/{orderId}` answers the payment or 404
`NOT_FOUND_PAYMENT`; a cancel takes `cancelAmount` (absent: the whole balance).

Modes:

- `up`: works as above.
- `down`: every call answers 503 `{code, message}`.
- `refusing`: the listening socket is closed, so connections are refused; the port is kept and
  listened on again when the mode changes back.
- `slow`: a confirm or cancel waits `slow_seconds` (longer than a client's timeout) before
  it is handled as `up` would. The payment is made even though the client gave up, as a real
  gateway would; meanwhile the same key gets 409 and a lookup (answered at once) finds
  nothing yet.
- `decline`: confirm answers 403 `REJECT_CARD_PAYMENT`; cancel works.
- `lose_answer`: confirm charges, then answers 500 (a lost answer: not stored).
- `merchant_refused`: every call answers 401 `UNAUTHORIZED_KEY`.
- `unknown_4xx`: every call answers 400 with a code docs/payment-gateway.md does not list.
- `refund_down`: confirm and lookup work; cancel answers 503.
- `scripted`: every call gets the answer given to `script(status, body, content_type)`, for
  the odd cases (an HTML error page, a 429, a 200 with a body that is not the API's).

Every request that reaches the server is recorded (method, path, lower-case headers, JSON
body, monotonic arrival time, mode).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import unquote

Mode = Literal[
    "up",
    "down",
    "refusing",
    "slow",
    "decline",
    "lose_answer",
    "merchant_refused",
    "unknown_4xx",
    "refund_down",
    "scripted",
]

CONFIRM_PATH = "/v1/payments/confirm"
ORDERS_PREFIX = "/v1/payments/orders/"
UNKNOWN_CODE = "SOMETHING_NOBODY_DOCUMENTED"


@dataclass(frozen=True)
class RecordedCall:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float
    mode: Mode

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class _Payment:
    payment_key: str
    order_id: str
    amount: int
    approved_at: str
    balance: int

    @property
    def status(self) -> str:
        if self.balance == self.amount:
            return "DONE"
        return "CANCELED" if self.balance == 0 else "PARTIAL_CANCELED"

    def as_json(self) -> dict[str, Any]:
        return {
            "paymentKey": self.payment_key,
            "orderId": self.order_id,
            "status": self.status,
            "totalAmount": self.amount,
            "balanceAmount": self.balance,
            "approvedAt": self.approved_at,
        }


@dataclass(frozen=True)
class _Answer:
    status: int
    body: dict[str, Any] | bytes
    content_type: str = "application/json"

    def payload(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


def _error(status: int, code: str, message: str) -> _Answer:
    return _Answer(status, {"code": code, "message": message})


class FakeGateway:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, slow_seconds: float = 5.0) -> None:
        self._host = host
        self._port = port
        self.slow_seconds = slow_seconds
        self._mode: Mode = "up"
        self._script = _Answer(500, b"")
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._calls: list[RecordedCall] = []
        self._stored: dict[str, _Answer] = {}
        self._in_flight: set[str] = set()
        self._payments: dict[str, _Payment] = {}
        self._by_order: dict[str, _Payment] = {}
        self._charges: Counter[str] = Counter()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        self._listen()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._close_listener()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def mode(self) -> Mode:
        return self._mode

    def set_mode(self, mode: Mode) -> None:
        """Switch behaviour; `refusing` closes the listening socket, leaving it reopens it."""
        previous, self._mode = self._mode, mode
        if mode == "refusing" and previous != "refusing":
            self._close_listener()
        elif previous == "refusing" and mode != "refusing":
            self._listen()

    def script(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        """Answer every call with this, until the next `set_mode`."""
        self._script = _Answer(status, body, content_type)
        self.set_mode("scripted")

    # ------------------------------------------------------------------ what happened

    @property
    def calls(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    def confirm_calls(self) -> list[RecordedCall]:
        return [call for call in self.calls if call.path == CONFIRM_PATH]

    def cancel_calls(self) -> list[RecordedCall]:
        return [call for call in self.calls if call.path.endswith("/cancel")]

    def lookup_calls(self) -> list[RecordedCall]:
        return [call for call in self.calls if call.path.startswith(ORDERS_PREFIX)]

    def charges_per_order(self) -> dict[str, int]:
        """How many distinct payments each order got: more than 1 means charged twice."""
        with self._lock:
            return dict(self._charges)

    def approved_orders(self) -> set[str]:
        with self._lock:
            return set(self._charges)

    def payment_status(self, payment_key: str) -> str | None:
        with self._lock:
            payment = self._payments.get(payment_key)
            return payment.status if payment else None

    def payment_key_of(self, order_id: str) -> str | None:
        with self._lock:
            payment = self._by_order.get(order_id)
            return payment.payment_key if payment else None

    def balance_of(self, order_id: str) -> int:
        """What the order is charged now (0 when never charged, or wholly refunded)."""
        with self._lock:
            payment = self._by_order.get(order_id)
            return payment.balance if payment else 0

    # ------------------------------------------------------------------ serving

    def _listen(self) -> None:
        server = ThreadingHTTPServer((self._host, self._port), _handler_for(self))
        server.daemon_threads = True
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _close_listener(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join()

    def _record(self, call: RecordedCall) -> None:
        with self._lock:
            self._calls.append(call)

    def _answer(self, method: str, path: str, key: str | None, body: Any) -> _Answer:
        mode = self._mode
        if mode == "scripted":
            return self._script
        if mode == "down":
            return _error(503, "PROVIDER_ERROR", "gateway is down")
        if mode == "merchant_refused":
            return _error(401, "UNAUTHORIZED_KEY", "the secret key is not valid")
        if mode == "unknown_4xx":
            return _error(400, UNKNOWN_CODE, "an answer outside the contract")
        if method == "GET" and path.startswith(ORDERS_PREFIX):
            return self._lookup(unquote(path[len(ORDERS_PREFIX) :]))
        if method != "POST":
            return _error(405, "METHOD_NOT_ALLOWED", method)
        if not key:
            return _error(400, "INVALID_REQUEST", "Idempotency-Key missing")
        if path == CONFIRM_PATH:
            if not _is_confirm_body(body):
                return _error(400, "INVALID_REQUEST", "bad confirm body")
            return self._once(key, mode, lambda: self._confirm(mode, body))
        prefix, suffix = "/v1/payments/", "/cancel"
        if path.startswith(prefix) and path.endswith(suffix):
            if mode == "refund_down":
                return _error(503, "PROVIDER_ERROR", "cancels are down")
            if not _is_cancel_body(body):
                return _error(400, "INVALID_REQUEST", "bad cancel body")
            payment_key = unquote(path[len(prefix) : -len(suffix)])
            return self._once(key, mode, lambda: self._cancel(payment_key, body))
        return _error(404, "NOT_FOUND", path)

    def _once(self, key: str, mode: Mode, run: Any) -> _Answer:
        """Replay a stored answer; 409 while the key is in flight; else run and store."""
        with self._lock:
            if key in self._stored:
                return self._stored[key]
            if key in self._in_flight:
                return _error(409, "IDEMPOTENT_REQUEST_PROCESSING", "in progress")
            self._in_flight.add(key)
        try:
            if mode == "slow":
                self._stopping.wait(self.slow_seconds)
            with self._lock:
                answer, stored = run()
                if stored:
                    self._stored[key] = answer
                return answer
        finally:
            with self._lock:
                self._in_flight.discard(key)

    def _confirm(self, mode: Mode, body: dict[str, Any]) -> tuple[_Answer, bool]:
        """Called under the lock: the answer, and whether it is stored for its key."""
        if mode == "decline":
            return _error(403, "REJECT_CARD_PAYMENT", "card refused"), True
        if body["orderId"] in self._by_order:
            return _error(400, "ALREADY_PROCESSED_PAYMENT", "this order was paid before"), False
        payment = _Payment(
            payment_key=f"pay_{uuid.uuid4().hex}",
            order_id=body["orderId"],
            amount=body["amount"],
            approved_at=datetime.now(UTC).isoformat(),
            balance=body["amount"],
        )
        self._payments[payment.payment_key] = payment
        self._by_order[payment.order_id] = payment
        self._charges[payment.order_id] += 1
        if mode == "lose_answer":
            return _error(500, "PROVIDER_ERROR", "the answer was lost"), False
        return _Answer(200, payment.as_json()), True

    def _cancel(self, payment_key: str, body: dict[str, Any]) -> tuple[_Answer, bool]:
        payment = self._payments.get(payment_key)
        if payment is None:
            return _error(404, "NOT_FOUND_PAYMENT", payment_key), False
        if payment.balance == 0:
            return _error(400, "ALREADY_CANCELED_PAYMENT", "nothing left to cancel"), True
        amount = body.get("cancelAmount", payment.balance)
        if not 0 < amount <= payment.balance:
            return _error(400, "INVALID_CANCEL_AMOUNT", f"{amount} > {payment.balance}"), False
        payment.balance -= amount
        return _Answer(200, payment.as_json()), True

    def _lookup(self, order_id: str) -> _Answer:
        with self._lock:
            payment = self._by_order.get(order_id)
            if payment is None:
                return _error(404, "NOT_FOUND_PAYMENT", f"no payment for {order_id}")
            return _Answer(200, payment.as_json())


def _is_confirm_body(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and isinstance(body.get("orderId"), str)
        and type(body.get("amount")) is int
        and isinstance(body.get("orderName"), str)
    )


def _is_cancel_body(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and isinstance(body.get("cancelReason"), str)
        and type(body.get("cancelAmount", 0)) is int
    )


def _handler_for(gateway: FakeGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._handle()

        def do_GET(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            headers = {name.lower(): value for name, value in self.headers.items()}
            gateway._record(
                RecordedCall(self.command, self.path, headers, body, time.monotonic(), gateway.mode)
            )
            answer = gateway._answer(self.command, self.path, headers.get("idempotency-key"), body)
            payload = answer.payload()
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up (timeout): like a real gateway, carry on

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return Handler
