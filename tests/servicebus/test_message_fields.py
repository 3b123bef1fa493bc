"""message_fields reads a Service Bus trigger's message the way the Functions worker builds it."""

from __future__ import annotations

from typing import Any

import pytest
from azure.functions.servicebus import ServiceBusMessage as TriggerMessage
from pydantic import ValidationError

from shared.api.messages import InboundMessage, message_fields


def trigger_message(**fields: Any) -> TriggerMessage:
    """A message as azure-functions' Service Bus converter hands it to a function."""
    defaults: dict[str, Any] = {
        "body": b'{"reservationId": "r1"}',
        "message_id": "evt-1",
        "application_properties": {},
        "user_properties": {},
    }
    return TriggerMessage(**{**defaults, **fields})


def test_a_bundle_4_message_gives_every_field_the_handlers_need() -> None:
    msg = trigger_message(
        correlation_id="corr-1",
        subject="PaymentApproved",
        content_type="application/json",
        application_properties={"reservationId": "r1", "attempt": 2},
        delivery_count=3,
    )

    assert message_fields(msg) == InboundMessage(
        body=b'{"reservationId": "r1"}',
        message_id="evt-1",
        correlation_id="corr-1",
        subject="PaymentApproved",
        content_type="application/json",
        application_properties={"reservationId": "r1", "attempt": 2},
        delivery_count=3,
    )


def test_an_older_host_s_label_and_user_properties_are_read_as_subject_and_properties() -> None:
    msg = trigger_message(label="PaymentDeclined", user_properties={"reason": "card"})

    fields = message_fields(msg)

    assert fields.subject == "PaymentDeclined"
    assert fields.application_properties == {"reason": "card"}


def test_subject_wins_over_label_when_a_host_sets_both() -> None:
    msg = trigger_message(subject="PaymentApproved", label="legacy")

    assert message_fields(msg).subject == "PaymentApproved"


def test_properties_missing_from_the_trigger_metadata_read_as_empty() -> None:
    msg = trigger_message(application_properties=None, user_properties=None)

    assert message_fields(msg).application_properties == {}


def test_a_message_without_a_delivery_count_counts_as_its_first_delivery() -> None:
    fields = message_fields(trigger_message())

    assert fields.delivery_count == 1
    assert fields.subject is None
    assert fields.correlation_id is None


def test_a_message_without_an_id_is_refused() -> None:
    with pytest.raises(ValidationError):
        message_fields(trigger_message(message_id=None))


def test_the_bare_functions_message_class_lacks_an_id_so_hosts_must_build_the_full_one() -> None:
    """`func.ServiceBusMessage(body=...)` has an empty message id: the local host must build
    `azure.functions.servicebus.ServiceBusMessage`, as the worker does."""
    import azure.functions as func

    with pytest.raises(ValidationError):
        message_fields(func.ServiceBusMessage(body=b"{}"))
