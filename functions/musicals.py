"""Musicals: show managers register them; anyone browses."""

import azure.functions as func

from shared.api.http import ApiRequest, endpoint, json_response
from shared.bootstrap import get_services
from shared.domain.commands import RegisterMusical
from shared.handlers.musicals import get_musical, list_musicals, register_musical

bp = func.Blueprint()


@bp.route(route="musicals", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def create_musical(request: ApiRequest) -> func.HttpResponse:
    services = get_services()
    services.authenticator.require_admin(request.raw.headers)
    command = request.body(RegisterMusical)
    musical = register_musical(command, services.store, services.clock.now())
    return json_response(musical, request, 201, {"Location": f"/api/musicals/{musical.id}"})


@bp.route(route="musicals", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def browse_musicals(request: ApiRequest) -> func.HttpResponse:
    limit, continuation = request.page_params()
    musicals, token = list_musicals(get_services().store, limit, continuation)
    return json_response(
        {"items": [m.to_api() for m in musicals], "continuationToken": token}, request
    )


@bp.route(route="musicals/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def show_musical(request: ApiRequest) -> func.HttpResponse:
    return json_response(get_musical(request.route("id"), get_services().store), request)
