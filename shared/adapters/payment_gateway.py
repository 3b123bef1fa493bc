"""The card gateway of docs/payment-gateway.md, over HTTP (a Korean gateway's confirm/cancel).

How answers map onto the PaymentGateway port (`shared.ports`), call by call:

| answer | confirm | lookup | cancel |
|---|---|---|---|
| 200 Payment | approved (`DONE`) | the payment | cancelled (`CANCELED`, `PARTIAL_CANCELED`) |
| 4xx with a card-decline `code` (`CARD_DECLINES`) | `PaymentDeclined`, final | unknown | unknown |
| 400 `ALREADY_PROCESSED_PAYMENT` | `AlreadyProcessed`: look it up | unknown | unknown |
| 400 `ALREADY_CANCELED_PAYMENT` | unknown | unknown | success |
| 404 `NOT_FOUND_PAYMENT` | unknown | None: not charged so far | unknown |
| 409 `IDEMPOTENT_REQUEST_PROCESSING` | `StillProcessing` | unknown | `StillProcessing` |
| 401 `UNAUTHORIZED_KEY`, 403 `FORBIDDEN_REQUEST` | `MerchantRejected` (ERROR log) | same | same |
| any other 4xx or 5xx, an odd body, a timeout, no connection | unknown | unknown | unknown |

"unknown" is `GatewayUnavailable`: outcome unknown, and a failure for the circuit breaker.

`StillProcessing` and `AlreadyProcessed` come from a gateway that works (the breaker counts
them as successes); `MerchantRejected` and `GatewayUnavailable` are breaker failures. A refused
connection or a failed connect is `GatewayNotReached`: that call certainly charged nothing.

The secret key goes in HTTP Basic auth, so it is sent only over https, or over plain http to a
loopback address (the local simulator, a test's gateway): anything else is refused at start.

Build one `HttpPaymentGateway` per process and keep it: each thread that calls it keeps a
connection of its own alive. It speaks HTTP through the standard library's `http.client`, which
costs less CPU per call than httpx (docs/performance.md).
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import logging
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Literal, Self, TypeVar
from urllib.parse import quote, urlsplit

from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from shared.adapters.sockets import closed_while_idle
from shared.ports import (
    AlreadyProcessed,
    GatewayNotReached,
    GatewayPayment,
    GatewayUnavailable,
    MerchantRejected,
    OutcomeUnknown,
    PaymentApproval,
    PaymentDeclined,
    StillProcessing,
)
from shared.settings import Settings

log = logging.getLogger("outerpark.gateway")

CARD_DECLINES = frozenset(
    {
        "REJECT_CARD_PAYMENT",
        "REJECT_CARD_COMPANY",
        "INVALID_CARD_EXPIRATION",
        "INVALID_STOPPED_CARD",
        "INVALID_CARD_LOST_OR_STOLEN",
        "EXCEED_MAX_DAILY_PAYMENT_COUNT",
        "EXCEED_MAX_PAYMENT_AMOUNT",
        "NOT_AVAILABLE_PAYMENT",
    }
)
ALREADY_PROCESSED = "ALREADY_PROCESSED_PAYMENT"
ALREADY_CANCELED = "ALREADY_CANCELED_PAYMENT"
IN_PROGRESS = "IDEMPOTENT_REQUEST_PROCESSING"
NOT_FOUND = "NOT_FOUND_PAYMENT"
MERCHANT_ERRORS = frozenset({"UNAUTHORIZED_KEY", "FORBIDDEN_REQUEST"})
_MAX_MESSAGE_CHARS = 500

M = TypeVar("M", bound=BaseModel)


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class ConfirmResponse(_Wire):
    payment_key: str
    order_id: str
    status: Literal["DONE"]
    approved_at: datetime


class PaymentResponse(_Wire):
    payment_key: str
    order_id: str
    status: Literal["DONE", "CANCELED", "PARTIAL_CANCELED"]
    total_amount: int
    balance_amount: int

    def to_port(self) -> GatewayPayment:
        return GatewayPayment(
            payment_key=self.payment_key,
            order_id=self.order_id,
            status=self.status,
            total_amount=self.total_amount,
            balance_amount=self.balance_amount,
        )


class CancelResponse(_Wire):
    payment_key: str
    status: Literal["CANCELED", "PARTIAL_CANCELED"]


class GatewayError(BaseModel):
    code: str
    message: str = ""


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    @property
    def error(self) -> GatewayError | None:
        """The `{code, message}` of an error answer, None when the body is not that."""
        try:
            return GatewayError.model_validate_json(self.body)
        except ValidationError:
            return None

    @property
    def code(self) -> str | None:
        error = self.error
        return error.code if error else None

    def message(self) -> str:
        error = self.error
        return (error.message if error else self.text)[:_MAX_MESSAGE_CHARS]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpPaymentGateway:
    """PaymentGateway over HTTP, one kept-alive connection per calling thread."""

    def __init__(
        self, base_url: str, timeout_seconds: float, secret_key: str | None = None
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"the payment gateway URL must be http(s)://host[:port]: {base_url}")
        self._https = url.scheme == "https"
        self._host = url.hostname
        if secret_key and not self._https and not is_loopback(self._host):
            raise ValueError(
                "refusing to send PAYMENT_GATEWAY_SECRET_KEY over plain http to"
                f" {self._host}: PAYMENT_GATEWAY_URL must be https:// (plain http:// is allowed"
                " only to a loopback address, such as the local simulator)"
            )
        self._port = url.port or (443 if self._https else 80)
        self._prefix = url.path.rstrip("/")
        self._timeout = timeout_seconds
        self._headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if secret_key:
            # Korean gateways take the secret key as the user name of Basic auth, no password.
            token = base64.b64encode(f"{secret_key}:".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._per_thread = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, base_url: str | None = None) -> HttpPaymentGateway:
        """The gateway the settings name (or `base_url`, e.g. the local simulator's).

        Raises ValueError when the URL is missing or malformed, or when it would carry the
        secret key over plain http to a host that is not this machine.
        """
        url = base_url or settings.payment_gateway_url
        if not url:
            raise ValueError("PAYMENT_GATEWAY_URL is not set")
        secret = settings.payment_gateway_secret_key
        return cls(
            url,
            settings.gateway_timeout_seconds,
            secret.get_secret_value() if secret else None,
        )

    def confirm(self, order_id: str, amount: int, order_name: str) -> PaymentApproval:
        answer = self._call(
            "POST",
            "/v1/payments/confirm",
            idempotency_key=order_id,
            body={"orderId": order_id, "amount": amount, "orderName": order_name},
        )
        if answer.status == 200:
            approved = _parse(ConfirmResponse, answer)
            return PaymentApproval(
                payment_key=approved.payment_key, approved_at=approved.approved_at
            )
        code = answer.code
        if 400 <= answer.status < 500 and code in CARD_DECLINES:
            raise PaymentDeclined(code, answer.message())
        if answer.status == 400 and code == ALREADY_PROCESSED:
            raise AlreadyProcessed(f"order {order_id} was confirmed before: {answer.message()}")
        raise self._unknown("confirm", answer)

    def lookup(self, order_id: str) -> GatewayPayment | None:
        answer = self._call("GET", f"/v1/payments/orders/{quote(order_id, safe='')}")
        if answer.status == 200:
            return _parse(PaymentResponse, answer).to_port()
        if answer.status == 404 and answer.code == NOT_FOUND:
            return None
        raise self._unknown("lookup", answer)

    def cancel(
        self,
        payment_key: str,
        reason: str,
        idempotency_key: str,
        cancel_amount: int | None = None,
    ) -> None:
        body: dict[str, object] = {"cancelReason": reason}
        if cancel_amount is not None:
            body["cancelAmount"] = cancel_amount
        answer = self._call(
            "POST",
            f"/v1/payments/{quote(payment_key, safe='')}/cancel",
            idempotency_key=idempotency_key,
            body=body,
        )
        if answer.status == 200:
            _parse(CancelResponse, answer)
            return
        if answer.status == 400 and answer.code == ALREADY_CANCELED:
            return
        raise self._unknown("cancel", answer)

    def admits(self) -> bool:
        return True

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _unknown(self, call: str, answer: _Answer) -> OutcomeUnknown:
        """What an answer that is neither a success nor a decline means: outcome unknown."""
        code = answer.code
        if code == IN_PROGRESS and answer.status == 409:
            return StillProcessing(f"{call}: a call with this key is still being processed")
        if answer.status == 401 or code in MERCHANT_ERRORS:
            log.error(
                "the payment gateway refused this merchant's credentials on %s: %s %s: %s;"
                " no payment can complete until PAYMENT_GATEWAY_SECRET_KEY (or the merchant's"
                " setup at the gateway) is fixed",
                call,
                answer.status,
                code,
                answer.message(),
            )
            return MerchantRejected(code or f"HTTP_{answer.status}", answer.message())
        if 400 <= answer.status < 500:
            log.warning(
                "the payment gateway answered %s %s to %s, which docs/payment-gateway.md does not "
                "list: outcome unknown",
                answer.status,
                code,
                call,
            )
        return GatewayUnavailable(
            f"payment gateway answered {answer.status} to {call}: {answer.text[:200]}"
        )

    def _call(
        self,
        method: str,
        path: str,
        idempotency_key: str | None = None,
        body: dict[str, object] | None = None,
    ) -> _Answer:
        request = json.dumps(body).encode() if body is not None else None
        headers = dict(self._headers)
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        connection = self._connection()
        if connection.sock is not None and closed_while_idle(connection.sock):
            connection.close()  # the gateway closed it while idle: nothing was sent on it
        reused = connection.sock is not None
        if not reused:
            _connect(connection)
        try:
            try:
                return _exchange(connection, method, self._prefix + path, request, headers)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if not reused:
                    raise
                # The gateway closed the kept-alive connection as we sent: send again, once, on
                # a new one (the Idempotency-Key makes that safe). The first may have reached
                # it, so failing from here on is "unavailable", never "not reached".
                connection.close()
                connection.connect()
                return _exchange(connection, method, self._prefix + path, request, headers)
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise GatewayUnavailable(f"payment gateway unreachable: {error!r}") from error

    def _connection(self) -> http.client.HTTPConnection:
        """This thread's connection (connected or not)."""
        connection: http.client.HTTPConnection | None = getattr(
            self._per_thread, "connection", None
        )
        if connection is not None:
            return connection
        if self._https:
            connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=ssl.create_default_context()
            )
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        self._per_thread.connection = connection
        with self._lock:
            self._connections.append(connection)
        return connection


def _connect(connection: http.client.HTTPConnection) -> None:
    """Connect; failing here, the request was certainly not sent: GatewayNotReached."""
    try:
        connection.connect()
    except OSError as error:
        connection.close()
        raise GatewayNotReached(f"payment gateway not reached: {error!r}") from error


def _exchange(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
) -> _Answer:
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    # On the gateway call's span (shared.adapters.tracing), when there is one.
    trace.get_current_span().set_attribute("http.response.status_code", response.status)
    return _Answer(response.status, response.read())


def _parse(model: type[M], answer: _Answer) -> M:
    try:
        return model.model_validate_json(answer.body)
    except ValidationError as error:
        raise GatewayUnavailable(
            f"payment gateway answered {answer.status} with an unexpected body"
        ) from error
