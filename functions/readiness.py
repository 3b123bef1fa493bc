"""Readiness: 200 when the store and the bus answer (even with payments down), 503 otherwise.

Deployments probe it before they count as done (infra/pipelines/deploy-steps.yml). Liveness
stays `GET /api/health`, which depends on nothing.
"""

import threading

import azure.functions as func

from shared.api.http import ApiRequest, endpoint, json_response
from shared.bootstrap import Services, get_services
from shared.handlers.readiness import (
    BacklogCounter,
    BusCheck,
    CachedReadiness,
    EmbeddedBusCheck,
    ReadinessDeps,
)
from shared.settings import get_settings

bp = func.Blueprint()
RETRY_AFTER_SECONDS = "5"

_lock = threading.Lock()
_readiness: CachedReadiness | None = None


@bp.route(route="health/ready", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
def readiness(request: ApiRequest) -> func.HttpResponse:
    report = _cached_readiness().report()
    body = {**report.model_dump(mode="json", by_alias=True), "build": get_settings().build_id}
    if report.ready:
        return json_response(body, request)
    return json_response(body, request, 503, {"Retry-After": RETRY_AFTER_SECONDS})


def _cached_readiness() -> CachedReadiness:
    global _readiness  # noqa: PLW0603 - one cached probe per process, like the services
    with _lock:
        if _readiness is None:
            services = get_services()
            _readiness = CachedReadiness(
                ReadinessDeps(
                    store=services.store,
                    bus=_bus_check(services),
                    breaker_state=services.breaker.state,
                    auth_configured=services.authenticator.configured,
                )
            )
        return _readiness


def _bus_check(services: Services) -> BusCheck:
    """Service Bus when configured (the publisher's client), else the embedded bus."""
    namespace = services.settings.servicebus_namespace
    if namespace is not None:
        from shared.adapters.azure_credentials import azure_credential
        from shared.adapters.servicebus_bus import service_bus_client
        from shared.adapters.servicebus_probe import ServiceBusCheck

        credential = azure_credential(services.settings.managed_identity_client_id)
        return ServiceBusCheck(service_bus_client(namespace, credential))  # type: ignore[arg-type]  # hashable by identity
    bus = services.bus
    if not isinstance(bus, BacklogCounter):
        raise TypeError(f"{type(bus).__name__} cannot count a subscription's backlog")
    return EmbeddedBusCheck(bus)
