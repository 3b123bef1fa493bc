"""The Cosmos DB trigger settings every change-feed function here shares.

Each feed consumer has its own lease prefix (its checkpoint in the leases container, which
Bicep declares: managed identity cannot create containers), starts from the beginning so a new
deployment catches up on everything, and retries a failing batch with backoff forever: a
skipped batch would lose events (relay) or leave the history wrong (projection).
"""

from collections.abc import Callable
from typing import Any

import azure.functions as func

from shared.topology import COSMOS_CONNECTION, DATABASE, LEASES

Decorator = Callable[[Any], Any]


def change_feed_trigger(
    bp: func.Blueprint, container: str, lease_prefix: str, **extra: Any
) -> Decorator:
    return bp.cosmos_db_trigger(
        arg_name="docs",
        connection=COSMOS_CONNECTION,
        database_name=DATABASE,
        container_name=container,
        lease_container_name=LEASES.name,
        lease_container_prefix=lease_prefix,
        create_lease_container_if_not_exists=False,
        # The SDK's stub says `time | None`; the binding takes a bool (as documented).
        start_from_beginning=True,  # type: ignore[arg-type]
        **extra,
    )


def retry_forever(bp: func.Blueprint) -> Decorator:
    return bp.retry(
        strategy="exponential_backoff",
        max_retry_count="-1",
        minimum_interval="00:00:01",
        maximum_interval="00:01:00",
    )
