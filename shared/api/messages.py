"""Reading Service Bus messages and Cosmos DB change batches handed to the functions."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
from pydantic import ValidationError

from shared.domain.events import Event
from shared.domain.models import CamelModel


class PaymentRetryRequest(CamelModel):
    """The body of a scheduled payment retry: which payment, and which of its deferrals."""

    reservation_id: str
    deferral: int


class PoisonMessage(Exception):
    """A message no retry can make sense of: the function dead-letters it (by raising until the
    delivery count runs out, as the Functions Service Bus trigger does)."""


def message_body(message: func.ServiceBusMessage) -> dict[str, Any]:
    try:
        body = json.loads(message.get_body())
    except (ValueError, UnicodeDecodeError) as error:
        raise PoisonMessage(f"message {message.message_id} is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise PoisonMessage(f"message {message.message_id} is not a JSON object")
    return body


def event_of(message: func.ServiceBusMessage) -> Event:
    try:
        return Event.model_validate(message_body(message))
    except ValidationError as error:
        raise PoisonMessage(f"message {message.message_id} is not an event: {error}") from None


def retry_request_of(message: func.ServiceBusMessage) -> PaymentRetryRequest:
    try:
        return PaymentRetryRequest.model_validate(message_body(message))
    except ValidationError as error:
        raise PoisonMessage(f"message {message.message_id} is not a retry: {error}") from None


def documents_of(batch: func.DocumentList) -> list[dict[str, Any]]:
    return [dict(document) for document in batch]
