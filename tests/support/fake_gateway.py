"""A payment gateway for tests: the API of docs/payment-gateway.md over real HTTP, with
switchable failures.

    with FakeGateway() as gateway:          # listens on a free port of 127.0.0.1
        os.environ["PAYMENT_GATEWAY_URL"] = gateway.url   # or pass it to a devhost subprocess
        gateway.set_mode("down")            # every call answers 503
        ...
        assert gateway.charges_per_order() == {"r-1": 1}

Modes:

- `up`: approves; idempotent by `Idempotency-Key` (the same key gets the same paymentKey).
- `down`: every call answers 503 `{code, message}`.
- `refusing`: the listening socket is closed, so connections are refused; the port is kept and
  listened on again when the mode changes back.
- `slow`: waits `slow_seconds` (longer than a client's timeout) before handling the call as
  `up` would. The payment is made even though the client gave up, as a real gateway would.
- `decline`: confirm answers 403 `REJECT_CARD_PAYMENT`; cancel works.
- `scripted`: every call gets the answer given to `script(status, body, content_type)`, for
  the odd cases (an HTML error page, a 429, a 200 with a body that is not the API's).

Every request that reaches the server is recorded (method, path, lower-case headers, JSON
body, monotonic arrival time, mode). Payments are keyed by idempotency key on purpose: a caller
that confirmed one order under two keys shows up as two charges in `charges_per_order()`.
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

Mode = Literal["up", "down", "refusing", "slow", "decline", "scripted"]

CONFIRM_PATH = "/v1/payments/confirm"


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
    status: Literal["DONE", "CANCELED"] = "DONE"


@dataclass(frozen=True)
class _Answer:
    status: int
    body: dict[str, Any] | bytes
    content_type: str = "application/json"

    def payload(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


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
        self._by_key: dict[str, _Payment] = {}
        self._payments: dict[str, _Payment] = {}
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
            for payment in self._payments.values():
                if payment.order_id == order_id:
                    return payment.payment_key
        return None

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
        if mode == "slow":
            self._stopping.wait(self.slow_seconds)
        if mode == "scripted":
            return self._script
        if mode == "down":
            return _Answer(503, {"code": "PROVIDER_ERROR", "message": "gateway is down"})
        if method != "POST":
            return _Answer(405, {"code": "METHOD_NOT_ALLOWED", "message": method})
        if not key:
            return _Answer(400, {"code": "INVALID_REQUEST", "message": "Idempotency-Key missing"})
        if path == CONFIRM_PATH:
            return self._confirm(mode, key, body)
        prefix, suffix = "/v1/payments/", "/cancel"
        if path.startswith(prefix) and path.endswith(suffix):
            return self._cancel(unquote(path[len(prefix) : -len(suffix)]), body)
        return _Answer(404, {"code": "NOT_FOUND", "message": path})

    def _confirm(self, mode: Mode, key: str, body: Any) -> _Answer:
        if not _is_confirm_body(body):
            return _Answer(400, {"code": "INVALID_REQUEST", "message": "bad confirm body"})
        if mode == "decline":
            return _Answer(403, {"code": "REJECT_CARD_PAYMENT", "message": "card refused"})
        with self._lock:
            payment = self._by_key.get(key)
            if payment is None:
                payment = _Payment(
                    payment_key=f"pay_{uuid.uuid4().hex}",
                    order_id=body["orderId"],
                    amount=body["amount"],
                    approved_at=datetime.now(UTC).isoformat(),
                )
                self._by_key[key] = payment
                self._payments[payment.payment_key] = payment
                self._charges[payment.order_id] += 1
        return _Answer(
            200,
            {
                "paymentKey": payment.payment_key,
                "orderId": payment.order_id,
                "status": "DONE",
                "approvedAt": payment.approved_at,
            },
        )

    def _cancel(self, payment_key: str, body: Any) -> _Answer:
        if not isinstance(body, dict) or not isinstance(body.get("cancelReason"), str):
            return _Answer(400, {"code": "INVALID_REQUEST", "message": "cancelReason missing"})
        with self._lock:
            payment = self._payments.get(payment_key)
            if payment is None:
                return _Answer(404, {"code": "NOT_FOUND_PAYMENT", "message": payment_key})
            payment.status = "CANCELED"
        return _Answer(200, {"paymentKey": payment_key, "status": "CANCELED"})


def _is_confirm_body(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and isinstance(body.get("orderId"), str)
        and type(body.get("amount")) is int
        and isinstance(body.get("orderName"), str)
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
