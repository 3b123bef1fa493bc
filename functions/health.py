"""Liveness. Cheap and dependency-free: it says the host runs and accepts requests, and which
build answers (the deployment's smoke test waits for the new one)."""

import azure.functions as func

from shared.api.http import ApiRequest, endpoint, json_response
from shared.settings import get_settings

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
def health(request: ApiRequest) -> func.HttpResponse:
    body = {"status": "ok", "service": "outerpark", "build": get_settings().build_id}
    return json_response(body, request)
