"""The Function App: every function of OuterPark, registered from its Blueprint.

Azure Functions (Python v2 model) and the local host (`python -m devhost`) both load this
module and read the functions the decorators recorded.
"""

import azure.functions as func

from functions import (
    health,
    history,
    musicals,
    notices,
    payments,
    performances,
    readiness,
    relay,
    reservation_events,
    reservations,
)

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

for blueprint_module in (
    health,
    readiness,
    musicals,
    performances,
    reservations,
    relay,
    payments,
    reservation_events,
    notices,
    history,
):
    app.register_functions(blueprint_module.bp)
