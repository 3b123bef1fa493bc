"""Names of every container, topic and subscription, in one place.

Code, the embedded store and bus, the Bicep templates and the consistency tests all read these
names from here, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.domain.events import EventStream

DATABASE = "outerpark"

# App-setting prefixes of the identity-based connections the triggers use
# (`<name>__accountEndpoint`, `<name>__fullyQualifiedNamespace`).
COSMOS_CONNECTION = "CosmosDBConnection"
SERVICEBUS_CONNECTION = "ServiceBusConnection"


@dataclass(frozen=True)
class ContainerSpec:
    """A Cosmos DB container: its partition key path and its default TTL.

    `default_ttl` follows Cosmos: None = TTL off, -1 = on but items live forever unless they
    carry their own `ttl`, n > 0 = items expire n seconds after their last write.
    """

    name: str
    partition_key: str
    default_ttl: int | None = None


MUSICALS = ContainerSpec("musicals", "/musicalId", default_ttl=-1)
PAYMENTS = ContainerSpec("payments", "/reservationId", default_ttl=-1)
NOTICES = ContainerSpec("notices", "/customerId")
CUSTOMER_CENTER = ContainerSpec("customercenter", "/customerId")
IDEMPOTENCY = ContainerSpec("idempotency", "/customerId", default_ttl=86_400)
CONTROL = ContainerSpec("control", "/id")
LEASES = ContainerSpec("leases", "/id")
# Seated musicals: a partition per performance and one per (performance, section); see
# shared.domain.performances and docs/seating.md.
PERFORMANCES = ContainerSpec("performances", "/partitionKey", default_ttl=-1)

CONTAINERS: dict[str, ContainerSpec] = {
    spec.name: spec
    for spec in (
        MUSICALS,
        PAYMENTS,
        NOTICES,
        CUSTOMER_CENTER,
        IDEMPOTENCY,
        CONTROL,
        LEASES,
        PERFORMANCES,
    )
}


@dataclass(frozen=True)
class SubscriptionSpec:
    """A Service Bus subscription. `subjects` is a filter on the message subject (empty = all)."""

    name: str
    subjects: tuple[str, ...] = ()
    max_delivery_count: int = 10
    lock_duration_seconds: int = 30


@dataclass(frozen=True)
class TopicSpec:
    name: str
    subscriptions: tuple[SubscriptionSpec, ...] = field(default_factory=tuple)
    duplicate_detection_window_seconds: int = 600


TOPIC_RESERVATION = EventStream.RESERVATION.value
TOPIC_CANCEL = EventStream.CANCEL.value
TOPIC_PAYMENT = EventStream.PAYMENT.value

SUB_PAYMENT = "payment"
SUB_NOTICE = "notice"
SUB_RESERVATION = "reservation"

TOPICS: dict[str, TopicSpec] = {
    spec.name: spec
    for spec in (
        TopicSpec(TOPIC_RESERVATION, (SubscriptionSpec(SUB_PAYMENT),)),
        TopicSpec(TOPIC_CANCEL, (SubscriptionSpec(SUB_PAYMENT),)),
        TopicSpec(
            TOPIC_PAYMENT,
            (
                SubscriptionSpec(
                    SUB_NOTICE, subjects=("PaymentApproved", "PaymentDeclined", "PaymentCancelled")
                ),
                SubscriptionSpec(SUB_RESERVATION, subjects=("PaymentApproved", "PaymentDeclined")),
            ),
        ),
    )
}
