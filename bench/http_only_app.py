"""The Function App without its background functions: only health, musicals and reservations.

For `python -m bench.request_cost --saga-off`: what a reservation costs the host when no saga
runs beside it.
"""

import azure.functions as func

from functions import health, musicals, reservations

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
for blueprint_module in (health, musicals, reservations):
    app.register_functions(blueprint_module.bp)
