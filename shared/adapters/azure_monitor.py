"""Application Insights for the app's own spans and logs: the Azure Monitor OpenTelemetry
distro, configured in the worker process when a connection string is set.

`host.json` `telemetryMode: OpenTelemetry` makes the Functions host export its telemetry with
OpenTelemetry; `PYTHON_ENABLE_OPENTELEMETRY=true` makes the Python worker hand each invocation
the host's trace context, so that the app's spans (shared.observability) join the host's. The
worker does not export anything itself then: the app configures the distro here. Should
`PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true` be set instead, the worker configures the
distro on its own, and this does nothing, so that no span is exported twice.
See docs/observability.md for the Microsoft pages this relies on.
"""

from __future__ import annotations

import logging
import os

from shared.observability import CorrelationFilter
from shared.settings import Settings

WORKER_CONFIGURES_DISTRO = "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"
# The Functions host's own setting for Entra ID ingestion: the distro takes a credential.
AUTHENTICATION_STRING = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"


def configure_azure_monitor_if_set(settings: Settings) -> bool:
    """Configure the distro when APPLICATIONINSIGHTS_CONNECTION_STRING is set (and the worker
    has not). Returns whether it did. Without it the OpenTelemetry API stays a no-op."""
    connection_string = settings.applicationinsights_connection_string
    if not connection_string or os.environ.get(WORKER_CONFIGURES_DISTRO, "").lower() == "true":
        return False
    from azure.monitor.opentelemetry import configure_azure_monitor

    options = {}
    if "Authorization=AAD" in os.environ.get(AUTHENTICATION_STRING, ""):
        from shared.adapters.azure_credentials import azure_credential

        options["credential"] = azure_credential(settings.managed_identity_client_id)
    configure_azure_monitor(connection_string=connection_string, **options)
    # Every log record then carries the correlation id among its custom dimensions.
    for handler in logging.getLogger().handlers:
        handler.addFilter(CorrelationFilter())
    return True
