"""Liveness. Cheap and dependency-free: it says the host runs and accepts requests."""

import azure.functions as func

from shared.api.http import ApiRequest, endpoint, json_response

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
def health(request: ApiRequest) -> func.HttpResponse:
    return json_response({"status": "ok", "service": "outerpark"}, request)
