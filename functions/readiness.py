"""Readiness: 200 when the store and the bus answer (even with payments down), 503 otherwise.

Deployments probe it before they count as done (infra/pipelines/deploy-steps.yml). Liveness
stays `GET /api/health`, which depends on nothing.
"""

import azure.functions as func

from shared.api.http import ApiRequest, endpoint, json_response
from shared.bootstrap import get_services
from shared.settings import get_settings

bp = func.Blueprint()
RETRY_AFTER_SECONDS = "5"


@bp.route(route="health/ready", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
def readiness(request: ApiRequest) -> func.HttpResponse:
    report = get_services().readiness.report()
    body = {**report.model_dump(mode="json", by_alias=True), "build": get_settings().build_id}
    if report.ready:
        return json_response(body, request)
    return json_response(body, request, 503, {"Retry-After": RETRY_AFTER_SECONDS})
