"""Performances of seated musicals: anyone looks at one and at its seats (CONTRACT §6)."""

import azure.functions as func

from shared.api.http import ApiRequest, endpoint, json_response
from shared.bootstrap import get_services
from shared.handlers.performances import get_performance, seat_summary, section_seats

bp = func.Blueprint()


@bp.route(route="performances/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
def show_performance(request: ApiRequest) -> func.HttpResponse:
    services = get_services()
    view = get_performance(request.route("id"), services.store, services.performances)
    return json_response(view, request)


@bp.route(route="performances/{id}/seats", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
def show_seats(request: ApiRequest) -> func.HttpResponse:
    services = get_services()
    performance_id, section = request.route("id"), request.raw.params.get("section")
    if section is None:
        return json_response(
            seat_summary(performance_id, services.store, services.performances), request
        )
    seats = section_seats(performance_id, section, services.store, services.performances)
    return json_response(seats, request)
