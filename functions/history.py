"""The customer center: GET /history, and the change-feed functions that build its view."""

import azure.functions as func

from functions.change_feed import change_feed_trigger, retry_forever
from shared.api.http import ApiRequest, endpoint, json_text_response
from shared.api.messages import documents_of
from shared.bootstrap import get_services
from shared.handlers.history import list_history
from shared.observability import traced_changes
from shared.projection.apply import project_changes
from shared.projection.feeds import HISTORY_FEEDS

bp = func.Blueprint()

_MUSICALS_FEED, _PAYMENTS_FEED, _NOTICES_FEED, _PERFORMANCES_FEED = HISTORY_FEEDS


async def _project(docs: func.DocumentList) -> None:
    await project_changes(documents_of(docs), get_services().async_store)


@bp.route(route="history", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
async def show_history(request: ApiRequest) -> func.HttpResponse:
    """Async: the read runs on the worker's event loop instead of a pool thread."""
    services = get_services()
    caller = services.authenticator.authenticate(request.raw.headers)
    limit, continuation = request.page_params()
    page = await list_history(caller, services.async_store, limit, continuation)
    return json_text_response(page.to_json(), request)


@bp.function_name("history_from_musicals")
@retry_forever(bp)
@change_feed_trigger(bp, _MUSICALS_FEED.container, _MUSICALS_FEED.lease_prefix)
@traced_changes
async def history_from_musicals(docs: func.DocumentList) -> None:
    await _project(docs)


@bp.function_name("history_from_payments")
@retry_forever(bp)
@change_feed_trigger(bp, _PAYMENTS_FEED.container, _PAYMENTS_FEED.lease_prefix)
@traced_changes
async def history_from_payments(docs: func.DocumentList) -> None:
    await _project(docs)


@bp.function_name("history_from_notices")
@retry_forever(bp)
@change_feed_trigger(bp, _NOTICES_FEED.container, _NOTICES_FEED.lease_prefix)
@traced_changes
async def history_from_notices(docs: func.DocumentList) -> None:
    await _project(docs)


@bp.function_name("history_from_performances")
@retry_forever(bp)
@change_feed_trigger(bp, _PERFORMANCES_FEED.container, _PERFORMANCES_FEED.lease_prefix)
@traced_changes
async def history_from_performances(docs: func.DocumentList) -> None:
    await _project(docs)
