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
    sagas,
)
from shared.adapters.azure_monitor import configure_azure_monitor_if_set
from shared.settings import get_settings

# Application Insights, when its connection string is set (a no-op locally).
configure_azure_monitor_if_set(get_settings())

# Function keys: in Azure, an HTTP function answers only a caller that shows a key (API
# Management sends one as x-functions-key); health and readiness stay anonymous for the platform
# and the deployment's probes. devhost checks no keys (docs/security.md).
app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

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
    sagas,
):
    app.register_functions(blueprint_module.bp)
