"""Musicals: show managers register them; anyone browses."""

import azure.functions as func

from shared.api.http import ApiRequest, endpoint, json_response
from shared.bootstrap import get_services
from shared.domain.commands import RegisterMusical
from shared.domain.musical_requests import MusicalRequest
from shared.domain.performances import SeatedMusical
from shared.handlers.musicals import get_musical, list_musicals, register_musical
from shared.handlers.performances import performance_views, register_seated_musical

bp = func.Blueprint()


@bp.route(route="musicals", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
def create_musical(request: ApiRequest) -> func.HttpResponse:
    services = get_services()
    services.authenticator.require_admin(request.raw.headers)
    command = request.body(MusicalRequest).root
    if not isinstance(command, RegisterMusical):  # seated (CONTRACT §6)
        seated = register_seated_musical(command, services.store, services.clock.now())
        return json_response(seated, request, 201, {"Location": f"/api/musicals/{seated['id']}"})
    musical = register_musical(command, services.store, services.clock.now())
    return json_response(musical, request, 201, {"Location": f"/api/musicals/{musical.id}"})


@bp.route(route="musicals", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
def browse_musicals(request: ApiRequest) -> func.HttpResponse:
    limit, continuation = request.page_params()
    musicals, token = list_musicals(get_services().store, limit, continuation)
    return json_response(
        {"items": [m.to_api() for m in musicals], "continuationToken": token}, request
    )


@bp.route(route="musicals/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
def show_musical(request: ApiRequest) -> func.HttpResponse:
    services = get_services()
    musical = get_musical(request.route("id"), services.store)
    if isinstance(musical, SeatedMusical):
        views = performance_views(musical, services.store, services.performances)
        return json_response(musical.to_api(views), request)
    return json_response(musical, request)
