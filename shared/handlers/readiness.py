"""Readiness: can this instance do its work? The store and the bus must answer.

Readiness never calls the payment gateway: the app keeps taking reservations while payments
are down (openapi.yaml, /health/ready), so an open breaker makes the instance degraded, not
unready. The report
also carries the breaker state and, where the backend can tell, the backlog of every
subscription, so that one probe shows an operator what the service is going through.

The report is cached for `cache_seconds`: the endpoint is anonymous, and a burst of probes must
not turn into a burst of store reads and bus calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from shared.breaker import BreakerState
from shared.domain.models import CamelModel
from shared.ports import DocumentStore, NotFound
from shared.topology import CONTROL

log = logging.getLogger("outerpark.readiness")
T = TypeVar("T")

# A document that never exists: reading it proves the store answers (NotFound is an answer).
PROBE_DOCUMENT_ID = "readiness-probe"
DEFAULT_CACHE_SECONDS = 2.0


class BusCheck(Protocol):
    def backlog(self) -> dict[str, int] | None:
        """Active messages per "topic/subscription", or None when the backend cannot tell.
        Raises when the bus cannot be reached."""


class CheckResult(CamelModel):
    """A check's state only: the endpoint is anonymous, so what failed and why goes to the log,
    never into the answer."""

    status: Literal["ok", "failing"]
    duration_ms: float


class ReadinessReport(CamelModel):
    status: Literal["ready", "not-ready"]
    checks: dict[str, CheckResult]
    breaker: BreakerState | None
    degraded: list[str]
    backlog: dict[str, int] | None

    @property
    def ready(self) -> bool:
        return self.status == "ready"


@dataclass(frozen=True)
class ReadinessDeps:
    store: DocumentStore
    bus: BusCheck
    breaker_state: Callable[[], BreakerState]
    auth_configured: bool = True


def check_readiness(deps: ReadinessDeps) -> ReadinessReport:
    """Run every check once and judge: ready when the store and the bus both answer and the
    app can check tokens (docs/security.md: a deployment without its token settings is not
    ready)."""
    store_check, _ = _timed(lambda: _read_probe_document(deps.store))
    bus_check, backlog = _timed(deps.bus.backlog)
    breaker = _breaker_state(deps.breaker_state)
    checks = {
        "store": store_check,
        "bus": bus_check,
        "auth": CheckResult(status="ok" if deps.auth_configured else "failing", duration_ms=0.0),
    }
    ready = all(check.status == "ok" for check in checks.values())
    return ReadinessReport(
        status="ready" if ready else "not-ready",
        checks=checks,
        breaker=breaker,
        degraded=["payment-gateway"] if breaker is not None and breaker.state != "closed" else [],
        backlog=backlog,
    )


class CachedReadiness:
    """`check_readiness`, run at most once per `cache_seconds` per process."""

    def __init__(self, deps: ReadinessDeps, cache_seconds: float = DEFAULT_CACHE_SECONDS) -> None:
        self._deps = deps
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._report: ReadinessReport | None = None
        self._checked_at = 0.0

    def report(self) -> ReadinessReport:
        with self._lock:
            if self._report is None or time.monotonic() - self._checked_at >= self._cache_seconds:
                self._report = check_readiness(self._deps)
                self._checked_at = time.monotonic()
            return self._report


def _read_probe_document(store: DocumentStore) -> None:
    try:
        store.read(CONTROL.name, PROBE_DOCUMENT_ID, PROBE_DOCUMENT_ID)
    except NotFound:
        return


def _timed(check: Callable[[], T]) -> tuple[CheckResult, T | None]:
    started = time.perf_counter()
    try:
        value = check()
    except Exception as error:
        log.warning("readiness check failed: %r", error)
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        return CheckResult(status="failing", duration_ms=elapsed), None
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    return CheckResult(status="ok", duration_ms=elapsed), value


def _breaker_state(read: Callable[[], BreakerState]) -> BreakerState | None:
    """The breaker state, or None when it cannot be read (the store check says why)."""
    try:
        return read()
    except Exception as error:
        log.warning("readiness could not read the circuit breaker: %r", error)
        return None
