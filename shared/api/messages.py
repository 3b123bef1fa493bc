"""Reading Service Bus messages and Cosmos DB change batches handed to the functions."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.domain.events import Event
from shared.domain.models import CamelModel
from shared.ports import JsonScalar


class InboundMessage(BaseModel):
    """What a Service-Bus-triggered function needs from its message."""

    model_config = ConfigDict(frozen=True)

    body: bytes
    message_id: str = Field(min_length=1)
    correlation_id: str | None = None
    subject: str | None = None
    content_type: str | None = None
    application_properties: dict[str, JsonScalar] = Field(default_factory=dict)
    delivery_count: int = Field(1, ge=1)


def message_fields(msg: func.ServiceBusMessage) -> InboundMessage:
    """Read a trigger's message, whichever names its host filled in.

    The Service Bus extension 5.x (bundle 4.x) sets `subject` and `application_properties`;
    older hosts set only `label` and `user_properties`, which azure-functions still exposes.
    A missing delivery count (a host that does not track it) counts as the first delivery.
    """
    properties = msg.application_properties or msg.user_properties or {}
    return InboundMessage(
        body=msg.get_body(),
        message_id=msg.message_id,
        correlation_id=msg.correlation_id,
        subject=msg.subject or msg.label,
        content_type=msg.content_type,
        application_properties={_text(key): value for key, value in properties.items()},
        delivery_count=msg.delivery_count or 1,
    )


def _text(key: str | bytes) -> str:
    return key.decode() if isinstance(key, bytes) else key


class PaymentRetryRequest(CamelModel):
    """The body of a scheduled payment retry: which payment, and which of its deferrals."""

    reservation_id: str
    deferral: int


class PoisonMessage(Exception):
    """A message no retry can make sense of: the function dead-letters it (by raising until the
    delivery count runs out, as the Functions Service Bus trigger does)."""


def inbound(message: func.ServiceBusMessage) -> InboundMessage:
    try:
        return message_fields(message)
    except ValidationError as error:
        raise PoisonMessage(f"message without the fields a message needs: {error}") from None


def _body(message: InboundMessage) -> dict[str, Any]:
    try:
        body = json.loads(message.body)
    except (ValueError, UnicodeDecodeError) as error:
        raise PoisonMessage(f"message {message.message_id} is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise PoisonMessage(f"message {message.message_id} is not a JSON object")
    return body


def event_of(message: InboundMessage) -> Event:
    try:
        return Event.model_validate(_body(message))
    except ValidationError as error:
        raise PoisonMessage(f"message {message.message_id} is not an event: {error}") from None


def retry_request_of(message: InboundMessage) -> PaymentRetryRequest:
    try:
        return PaymentRetryRequest.model_validate(_body(message))
    except ValidationError as error:
        raise PoisonMessage(f"message {message.message_id} is not a retry: {error}") from None


def documents_of(batch: func.DocumentList) -> list[dict[str, Any]]:
    """The batch's documents as dicts. A Document is a UserDict: its `data` is copied in C,
    where `dict(document)` goes through Python-level __getitem__ for every key."""
    return [dict(document.data) for document in batch]
