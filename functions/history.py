"""The customer center: GET /history, and the change-feed functions that build its view.

Each feed has its own lease prefix (its checkpoint) and starts from the beginning, so a new
deployment builds the whole view. A failing batch is retried with backoff forever rather than
skipped: a skipped batch would leave the view wrong until a rebuild.
"""

import azure.functions as func

from shared.api.http import ApiRequest, endpoint, json_response
from shared.bootstrap import get_services
from shared.handlers.history import list_history
from shared.projection.apply import project_changes
from shared.projection.feeds import HISTORY_FEEDS
from shared.topology import COSMOS_CONNECTION, DATABASE, LEASES

bp = func.Blueprint()

_MUSICALS_FEED, _PAYMENTS_FEED, _NOTICES_FEED = HISTORY_FEEDS


def _project(docs: func.DocumentList) -> None:
    project_changes([doc.to_dict() for doc in docs], get_services().store)


def _history_feed_trigger(feed_container: str, lease_prefix: str):
    return bp.cosmos_db_trigger(
        arg_name="docs",
        connection=COSMOS_CONNECTION,
        database_name=DATABASE,
        container_name=feed_container,
        lease_container_name=LEASES.name,
        create_lease_container_if_not_exists=False,
        lease_container_prefix=lease_prefix,
        start_from_beginning=True,
    )


def _retry_forever():
    return bp.retry(
        strategy="exponential_backoff",
        max_retry_count="-1",
        minimum_interval="00:00:01",
        maximum_interval="00:01:00",
    )


@bp.route(route="history", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
def show_history(request: ApiRequest) -> func.HttpResponse:
    services = get_services()
    caller = services.authenticator.authenticate(request.raw.headers)
    limit, continuation = request.page_params()
    return json_response(
        list_history(caller, services.store, limit, continuation).to_api(), request
    )


@bp.function_name("history_from_musicals")
@_retry_forever()
@_history_feed_trigger(_MUSICALS_FEED.container, _MUSICALS_FEED.lease_prefix)
def history_from_musicals(docs: func.DocumentList) -> None:
    _project(docs)


@bp.function_name("history_from_payments")
@_retry_forever()
@_history_feed_trigger(_PAYMENTS_FEED.container, _PAYMENTS_FEED.lease_prefix)
def history_from_payments(docs: func.DocumentList) -> None:
    _project(docs)


@bp.function_name("history_from_notices")
@_retry_forever()
@_history_feed_trigger(_NOTICES_FEED.container, _NOTICES_FEED.lease_prefix)
def history_from_notices(docs: func.DocumentList) -> None:
    _project(docs)
