"""The card gateway of CONTRACT §4, over HTTP (shaped on Korean gateways' confirm/cancel API).

How answers map onto the PaymentGateway port:

- 200 → approved (confirm) or cancelled (cancel).
- 4xx → `PaymentDeclined(code, message)`, final, from the body `{code, message}` (a body that
  is not that JSON still declines, with code `HTTP_<status>`). Two exceptions: 408 and 429
  mean "not now" rather than "no", so they are `GatewayUnavailable` like a 5xx; and a cancel
  answered `ALREADY_CANCELED_PAYMENT` is the success it looks like.
- 5xx, a timeout, a refused or broken connection, or a 200 whose body is not the documented
  one → `GatewayUnavailable`: try later; the `Idempotency-Key` makes the retry safe.

Build one `HttpPaymentGateway` per process and keep it: each thread that calls it keeps a
connection of its own alive. It speaks HTTP through the standard library's `http.client`: httpx
cost ~600 µs of CPU more per call (measured against the local simulator), and the payment
function makes one call per payment.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Literal, Self, TypeVar
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from shared.adapters.sockets import closed_while_idle
from shared.ports import GatewayNotReached, GatewayUnavailable, PaymentApproval, PaymentDeclined
from shared.settings import Settings

_TRANSIENT_CLIENT_ERRORS = frozenset({408, 429})
_ALREADY_CANCELED = "ALREADY_CANCELED_PAYMENT"
_MAX_MESSAGE_CHARS = 500

M = TypeVar("M", bound=BaseModel)


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class ConfirmResponse(_Wire):
    payment_key: str
    order_id: str
    status: Literal["DONE"]
    approved_at: datetime


class CancelResponse(_Wire):
    payment_key: str
    status: Literal["CANCELED"]


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
        """The gateway the settings name (or `base_url`, e.g. the local simulator's)."""
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
        answer = self._post(
            "/v1/payments/confirm",
            idempotency_key=order_id,
            body={"orderId": order_id, "amount": amount, "orderName": order_name},
        )
        if answer.status >= 400:
            raise _decline(answer)
        approved = _parse(ConfirmResponse, answer)
        return PaymentApproval(payment_key=approved.payment_key, approved_at=approved.approved_at)

    def cancel(
        self,
        payment_key: str,
        reason: str,
        idempotency_key: str,
        cancel_amount: int | None = None,
    ) -> None:
        body: dict[str, object] = {"cancelReason": reason}
        if cancel_amount is not None:  # a partial refund (seated cancellation fee, CONTRACT §6)
            body["cancelAmount"] = cancel_amount
        answer = self._post(
            f"/v1/payments/{quote(payment_key, safe='')}/cancel",
            idempotency_key=idempotency_key,
            body=body,
        )
        if answer.status >= 400:
            declined = _decline(answer)
            if declined.code == _ALREADY_CANCELED:
                return
            raise declined
        _parse(CancelResponse, answer)

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

    def _post(self, path: str, idempotency_key: str, body: dict[str, object]) -> _Answer:
        request = json.dumps(body).encode()
        headers = {**self._headers, "Idempotency-Key": idempotency_key}
        connection = self._connection()
        if connection.sock is not None and closed_while_idle(connection.sock):
            connection.close()  # the gateway closed it while idle: nothing was sent on it
        reused = connection.sock is not None
        if not reused:
            _connect(connection)
        try:
            try:
                answer = _exchange(connection, self._prefix + path, request, headers)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if not reused:
                    raise
                # The gateway closed the kept-alive connection as we sent: send again, once, on
                # a new one (the Idempotency-Key makes that safe). The first may have reached
                # it, so failing from here on is "unavailable", never "not reached".
                connection.close()
                connection.connect()
                answer = _exchange(connection, self._prefix + path, request, headers)
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise GatewayUnavailable(f"payment gateway unreachable: {error!r}") from error
        if answer.status >= 500 or answer.status in _TRANSIENT_CLIENT_ERRORS:
            raise GatewayUnavailable(
                f"payment gateway answered {answer.status}: {answer.text[:200]}"
            )
        return answer

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
    connection: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]
) -> _Answer:
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    return _Answer(response.status, response.read())


def _decline(answer: _Answer) -> PaymentDeclined:
    try:
        error = GatewayError.model_validate_json(answer.body)
    except ValidationError:
        return PaymentDeclined(f"HTTP_{answer.status}", answer.text[:_MAX_MESSAGE_CHARS])
    return PaymentDeclined(error.code, error.message[:_MAX_MESSAGE_CHARS])


def _parse(model: type[M], answer: _Answer) -> M:
    try:
        return model.model_validate_json(answer.body)
    except ValidationError as error:
        raise GatewayUnavailable(
            f"payment gateway answered {answer.status} with an unexpected body"
        ) from error
