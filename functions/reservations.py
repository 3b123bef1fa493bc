"""Reservations: customers place, read and cancel them (synchronously, seats held atomically)."""

import azure.functions as func

from shared.api.http import ApiRequest, endpoint, json_response
from shared.bootstrap import get_services
from shared.domain.commands import PlaceReservation
from shared.domain.ids import seated_partition_of
from shared.domain.models import Reservation
from shared.domain.reservation_requests import ReservationRequest
from shared.handlers.reservation_reads import read_reservation
from shared.handlers.reservations import cancel_reservation, place_reservation
from shared.handlers.seated_changes import cancel_seated_reservation
from shared.handlers.seated_reservations import place_seated_reservation
from shared.observability import annotate

bp = func.Blueprint()


@bp.route(route="reservations", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@endpoint
async def create_reservation(request: ApiRequest) -> func.HttpResponse:
    """Async: the hot path runs on the worker's event loop instead of a pool thread."""
    services = get_services()
    caller = services.authenticator.authenticate(request.raw.headers)
    command = request.body(ReservationRequest).root
    key = request.idempotency_key()
    if isinstance(command, PlaceReservation):
        placed = await place_reservation(
            command, caller, request.correlation_id, key, services.reservation_deps
        )
    else:  # seated (docs/seating.md)
        placed = await place_seated_reservation(
            command, caller, request.correlation_id, key, services.seated_deps
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
    reservation_id = request.route("id")
    reservation: Reservation
    if seated_partition_of(reservation_id):
        reservation = cancel_seated_reservation(reservation_id, caller, services.seated_deps)
    else:
        reservation = cancel_reservation(reservation_id, caller, services.reservation_deps)
    annotate(reservation.id)
    return json_response(reservation, request)
