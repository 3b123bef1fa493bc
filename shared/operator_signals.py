"""Log lines operators are alerted on: a contract between the code and the alert rules.

The rules are in infra/modules/operations.bicep.

Scheduled query rules in Azure Monitor match these messages in Application Insights' `AppTraces`
table (docs/runbook.md). Change a message here and the query there together; tests/infra checks
that each query matches its message. The circuit breaker's own lines (shared/breaker.py) are
matched as they are.
"""

from __future__ import annotations

# A reservation's payment was not approved by its deadline: its seats went back
# (docs/resilience.md).
RESERVATION_EXPIRED = "reservation %s expired: its payment was not approved by its deadline"

# The reconciler found a reservation still Reserved long after its creation (seconds).
RESERVATION_OVERDUE = "reservation %s still Reserved after %d s"
