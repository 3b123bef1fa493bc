"""Reservations: customers place, read and cancel them (synchronously, seats held atomically)."""

import azure.functions as func

from shared.api.http import ApiRequest, endpoint, json_response
from shared.bootstrap import get_services
from shared.domain.commands import PlaceReservation
from shared.handlers.reservation_reads import read_reservation
from shared.handlers.reservations import cancel_reservation, place_reservation
from shared.observability import annotate

bp = func.Blueprint()


@bp.route(route="reservations", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
async def create_reservation(request: ApiRequest) -> func.HttpResponse:
    """Async: the hot path runs on the worker's event loop instead of a pool thread."""
    services = get_services()
    caller = services.authenticator.authenticate(request.raw.headers)
    command = request.body(PlaceReservation)
    placed = await place_reservation(
        command,
        caller,
        request.correlation_id,
        request.idempotency_key(),
        services.reservation_deps,
    )
    reservation = placed.reservation
    annotate(reservation.id)
    return json_response(
        reservation,
        request,
        201 if placed.created else 200,
        {"Location": f"/api/reservations/{reservation.id}"},
    )


@bp.route(route="reservations/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
async def show_reservation(request: ApiRequest) -> func.HttpResponse:
    services = get_services()
    caller = services.authenticator.authenticate(request.raw.headers)
    reservation = await read_reservation(request.route("id"), caller, services.async_store)
    return json_response(reservation, request)


@bp.route(route="reservations/{id}/cancel", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
def cancel_reservation_request(request: ApiRequest) -> func.HttpResponse:
    services = get_services()
    caller = services.authenticator.authenticate(request.raw.headers)
    reservation = cancel_reservation(request.route("id"), caller, services.reservation_deps)
    annotate(reservation.id)
    return json_response(reservation, request)
