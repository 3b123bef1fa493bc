"""The card gateway of CONTRACT §4, over HTTP (shaped on Korean gateways' confirm/cancel API).

How answers map onto the PaymentGateway port:

- 200 → approved (confirm) or cancelled (cancel).
- 4xx → `PaymentDeclined(code, message)`, final, from the body `{code, message}` (a body that
  is not that JSON still declines, with code `HTTP_<status>`). Two exceptions: 408 and 429
  mean "not now" rather than "no", so they are `GatewayUnavailable` like a 5xx; and a cancel
  answered `ALREADY_CANCELED_PAYMENT` is the success it looks like.
- 5xx, a timeout, a refused or broken connection, or a 200 whose body is not the documented
  one → `GatewayUnavailable`: try later; the `Idempotency-Key` makes the retry safe.

Build one `HttpPaymentGateway` per process and keep it: each thread that calls it gets an
`httpx.Client` of its own, which keeps its connection alive. (One client shared by many threads
spent more CPU assigning connections in its pool, under its lock, than on the calls themselves:
measured in devhost's trigger host, ~10 ms per confirm with 16 threads calling.)
"""

from __future__ import annotations

import threading
from datetime import datetime
from types import TracebackType
from typing import Literal, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from shared.ports import GatewayNotReached, GatewayUnavailable, PaymentApproval, PaymentDeclined
from shared.settings import Settings

_TRANSIENT_CLIENT_ERRORS = frozenset({408, 429})
_ALREADY_CANCELED = "ALREADY_CANCELED_PAYMENT"
_MAX_MESSAGE_CHARS = 500
CONNECTIONS_PER_THREAD = 2  # a thread makes one call at a time; a spare for a stale one

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


class HttpPaymentGateway:
    """PaymentGateway over HTTP, with kept-alive connections and one timeout per phase."""

    def __init__(
        self,
        base_url: str,
        timeout_seconds: float,
        secret_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client_options = {
            "base_url": base_url,
            "timeout": httpx.Timeout(timeout_seconds),
            "limits": httpx.Limits(max_connections=CONNECTIONS_PER_THREAD),
            # Korean gateways take the secret key as the user name of Basic auth, no password.
            "auth": httpx.BasicAuth(secret_key, "") if secret_key else None,
            "headers": {"Accept": "application/json"},
            "transport": transport,
        }
        self._per_thread = threading.local()
        self._clients: list[httpx.Client] = []
        self._clients_lock = threading.Lock()

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
        response = self._post(
            "/v1/payments/confirm",
            idempotency_key=order_id,
            body={"orderId": order_id, "amount": amount, "orderName": order_name},
        )
        if response.status_code >= 400:
            raise _decline(response)
        approved = _parse(ConfirmResponse, response)
        return PaymentApproval(payment_key=approved.payment_key, approved_at=approved.approved_at)

    def cancel(self, payment_key: str, reason: str, idempotency_key: str) -> None:
        response = self._post(
            f"/v1/payments/{quote(payment_key, safe='')}/cancel",
            idempotency_key=idempotency_key,
            body={"cancelReason": reason},
        )
        if response.status_code >= 400:
            declined = _decline(response)
            if declined.code == _ALREADY_CANCELED:
                return
            raise declined
        _parse(CancelResponse, response)

    def close(self) -> None:
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    def _client(self) -> httpx.Client:
        """This thread's client, built on its first call."""
        client: httpx.Client | None = getattr(self._per_thread, "client", None)
        if client is None:
            client = self._per_thread.client = httpx.Client(**self._client_options)
            with self._clients_lock:
                self._clients.append(client)
        return client

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _post(self, path: str, idempotency_key: str, body: dict[str, object]) -> httpx.Response:
        try:
            response = self._client().post(
                path, json=body, headers={"Idempotency-Key": idempotency_key}
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise GatewayNotReached(f"payment gateway not reached: {error!r}") from error
        except httpx.TransportError as error:
            raise GatewayUnavailable(f"payment gateway unreachable: {error!r}") from error
        status = response.status_code
        if status >= 500 or status in _TRANSIENT_CLIENT_ERRORS:
            raise GatewayUnavailable(f"payment gateway answered {status}: {response.text[:200]}")
        return response


def _decline(response: httpx.Response) -> PaymentDeclined:
    try:
        error = GatewayError.model_validate_json(response.content)
    except ValidationError:
        return PaymentDeclined(f"HTTP_{response.status_code}", response.text[:_MAX_MESSAGE_CHARS])
    return PaymentDeclined(error.code, error.message[:_MAX_MESSAGE_CHARS])


def _parse(model: type[M], response: httpx.Response) -> M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as error:
        raise GatewayUnavailable(
            f"payment gateway answered {response.status_code} with an unexpected body"
        ) from error
