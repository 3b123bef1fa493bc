"""Performances of seated musicals: anyone looks at one and at its seats (docs/seating.md)."""

import azure.functions as func

from shared.api.http import ApiRequest, endpoint, json_response, json_text_response
from shared.bootstrap import get_services
from shared.handlers.performances import get_performance, seat_summary, section_seats

bp = func.Blueprint()


@bp.route(route="performances/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
async def show_performance(request: ApiRequest) -> func.HttpResponse:
    services = get_services()
    view = await get_performance(request.route("id"), services.async_store, services.performances)
    return json_response(view, request)


@bp.route(route="performances/{id}/seats", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
async def show_seats(request: ApiRequest) -> func.HttpResponse:
    services = get_services()
    performance_id, section = request.route("id"), request.raw.params.get("section")
    if section is None:
        summary = await seat_summary(performance_id, services.async_store, services.performances)
        return json_response(summary, request)
    seats = await section_seats(
        performance_id, section, services.async_store, services.performances
    )
    return json_text_response(seats, request)
