"""Musicals: show managers register them; anyone browses."""

import azure.functions as func

from shared.api.http import ApiRequest, endpoint, json_response, json_text_response
from shared.bootstrap import get_services
from shared.domain.commands import RegisterMusical
from shared.domain.musical_requests import MusicalRequest
from shared.handlers.musicals import list_musicals, read_musical, register_musical
from shared.handlers.performances import register_seated_musical

bp = func.Blueprint()


@bp.route(route="musicals", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def create_musical(request: ApiRequest) -> func.HttpResponse:
    services = get_services()
    services.authenticator.require_admin(request.raw.headers)
    command = request.body(MusicalRequest).root
    if not isinstance(command, RegisterMusical):  # seated (docs/seating.md)
        seated = register_seated_musical(command, services.musical_deps)
        return json_response(seated, request, 201, {"Location": f"/api/musicals/{seated['id']}"})
    musical = register_musical(command, services.musical_deps)
    return json_response(musical, request, 201, {"Location": f"/api/musicals/{musical.id}"})


@bp.route(route="musicals", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
async def browse_musicals(request: ApiRequest) -> func.HttpResponse:
    limit, continuation = request.page_params()
    page = await list_musicals(get_services().async_store, limit, continuation)
    return json_text_response(page.to_json(), request)


@bp.route(route="musicals/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
async def show_musical(request: ApiRequest) -> func.HttpResponse:
    musical = await read_musical(request.route("id"), get_services().async_store)
    return json_response(musical, request)
