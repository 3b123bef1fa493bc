"""Outbox relays: the change feeds of the containers that hold events → Service Bus topics."""

import azure.functions as func

from shared.api.messages import documents_of
from shared.bootstrap import get_services
from shared.handlers.relay import relay_outbox
from shared.topology import COSMOS_CONNECTION, DATABASE, LEASES, MUSICALS, PAYMENTS

bp = func.Blueprint()


def _relay(docs: func.DocumentList) -> None:
    relay_outbox(documents_of(docs), get_services().bus)


# A failed publish must never skip events: retry the batch until it goes through.
@bp.retry(
    strategy="exponential_backoff",
    max_retry_count="-1",
    minimum_interval="00:00:01",
    maximum_interval="00:00:30",
)
@bp.cosmos_db_trigger(
    arg_name="docs",
    connection=COSMOS_CONNECTION,
    database_name=DATABASE,
    container_name=MUSICALS.name,
    lease_container_name=LEASES.name,
    lease_container_prefix="relay-musicals",
    create_lease_container_if_not_exists=False,
    start_from_beginning=True,
    feed_poll_delay=1000,
)
def relay_reservation_events(docs: func.DocumentList) -> None:
    _relay(docs)


@bp.retry(
    strategy="exponential_backoff",
    max_retry_count="-1",
    minimum_interval="00:00:01",
    maximum_interval="00:00:30",
)
@bp.cosmos_db_trigger(
    arg_name="docs",
    connection=COSMOS_CONNECTION,
    database_name=DATABASE,
    container_name=PAYMENTS.name,
    lease_container_name=LEASES.name,
    lease_container_prefix="relay-payments",
    create_lease_container_if_not_exists=False,
    start_from_beginning=True,
    feed_poll_delay=1000,
)
def relay_payment_events(docs: func.DocumentList) -> None:
    _relay(docs)
