"""Outbox relays: the change feeds of the containers that hold events → Service Bus topics."""

import azure.functions as func

from functions.change_feed import change_feed_trigger, retry_forever
from shared.api.messages import documents_of
from shared.bootstrap import get_services
from shared.handlers.relay import relay_outbox
from shared.observability import traced_changes
from shared.topology import MUSICALS, PAYMENTS, PERFORMANCES

bp = func.Blueprint()

# Poll every second in Azure (the default is 5 s): the saga waits on these relays.
_POLL_MS = 1000
# Changes per invocation (the default is 100), each batch one publish and one checkpoint: after a
# burst the relays catch up within seconds (docs/performance.md).
_BATCH = 1000


def _relay(docs: func.DocumentList) -> None:
    relay_outbox(documents_of(docs), get_services().bus)


@retry_forever(bp)
@change_feed_trigger(
    bp, MUSICALS.name, "relay-musicals", feed_poll_delay=_POLL_MS, max_items_per_invocation=_BATCH
)
@traced_changes
def relay_reservation_events(docs: func.DocumentList) -> None:
    _relay(docs)


@retry_forever(bp)
@change_feed_trigger(
    bp, PAYMENTS.name, "relay-payments", feed_poll_delay=_POLL_MS, max_items_per_invocation=_BATCH
)
@traced_changes
def relay_payment_events(docs: func.DocumentList) -> None:
    _relay(docs)


@retry_forever(bp)
@change_feed_trigger(
    bp,
    PERFORMANCES.name,
    "relay-performances",
    feed_poll_delay=_POLL_MS,
    max_items_per_invocation=_BATCH,
)
@traced_changes
def relay_seated_reservation_events(docs: func.DocumentList) -> None:
    _relay(docs)
