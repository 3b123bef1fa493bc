"""A circuit breaker whose state every instance of the Function App shares.

Functions scale out to many instances, so a breaker held in one process's memory would let
each new instance hammer a failing gateway all over again. The state lives in one document of
the `control` container instead, written with optimistic concurrency (`If-Match` on its ETag,
retried on 412), and each process caches what it read for `cache_seconds`: while the breaker
is closed and calls succeed, the hot path costs one point read per cache period and no write.

States:

- closed: calls go through. `failure_threshold` consecutive failures open it. Consecutive
  rather than a rate over a window: it needs no window kept in the document, any success
  (on any instance) resets the count, and a gateway that fails call after call is exactly what
  should stop us. The price is that a gateway failing every other call never opens it.
- open: calls are refused at once with `BreakerOpen`, for `open_seconds`.
- half-open: at most `half_open_probes` calls at a time, across all instances, go through as
  probes. Each holds a slot in the document with a lease, so a slot whose holder crashed
  expires instead of blocking the breaker for ever. A probe that succeeds closes the breaker;
  one that fails opens it again for another `open_seconds`.

Only `GatewayUnavailable` counts as a failure (5xx, timeouts, cut connections, answers outside
the contract, and `MerchantRejected`: a gateway that refuses the merchant's key is unusable).
A decline (`PaymentDeclined`) and "already processed" are well-formed answers from a working
gateway, so they count as successes. "Still processing" (409) counts as neither (a gateway
that times out every call answers it to every retry of the same key, and must not look
healthy), except for a half-open probe, which it fails: the probe showed no health.

`admits()` tells, from the cached state and without a write, whether a call would be let
through now: the payment handler asks it before it records an attempt, so that a payment the
open breaker would refuse costs no write but its rescheduling.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.clock import SystemClock
from shared.optimistic import Contended, retry_on_race
from shared.ports import (
    Clock,
    Conflict,
    DocumentStore,
    GatewayNotReached,
    GatewayPayment,
    GatewayUnavailable,
    NotFound,
    OutcomeUnknown,
    PaymentApproval,
    PaymentDeclined,
    PaymentGateway,
    PreconditionFailed,
    StillProcessing,
    StoreError,
)
from shared.settings import Settings
from shared.topology import CONTROL

logger = logging.getLogger(__name__)

T = TypeVar("T")
StateName = Literal["closed", "open", "half_open"]

PAYMENT_GATEWAY_BREAKER = "payment-gateway"


class BreakerOpen(GatewayNotReached):
    """The breaker refused the call without making it: try again after `retry_after_seconds`."""

    def __init__(self, retry_after_seconds: float) -> None:
        super().__init__(f"circuit breaker open; retry after {retry_after_seconds:.1f}s")
        self.retry_after_seconds = retry_after_seconds


class BreakerConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    failure_threshold: int = Field(5, ge=1)
    open_seconds: float = Field(10.0, gt=0)
    half_open_probes: int = Field(1, ge=1)
    cache_seconds: float = Field(1.0, ge=0)
    probe_lease_seconds: float = Field(
        12.0,
        gt=0,
        description="How long a probe slot stays taken when its holder never reports back.",
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> BreakerConfig:
        """The breaker of the payment gateway, as the app settings describe it.

        A probe's lease is four gateway timeouts: httpx applies the timeout to each of the
        pool, connect, write and read phases, so no live call outlasts it.
        """
        return cls(
            failure_threshold=settings.breaker_failure_threshold,
            open_seconds=settings.breaker_open_seconds,
            half_open_probes=settings.breaker_half_open_probes,
            cache_seconds=settings.breaker_cache_seconds,
            probe_lease_seconds=4 * settings.gateway_timeout_seconds,
        )


class BreakerState(BaseModel):
    """What the readiness endpoint reports and what load shedding decides on."""

    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)

    state: StateName
    opened_at: datetime | None
    retry_after_seconds: int = Field(
        description="Whole seconds until a probe may run; 0 unless open."
    )
    consecutive_failures: int


class _Record(BaseModel):
    """The breaker document in the control container (times are epoch seconds)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    id: str
    state: StateName = "closed"
    consecutive_failures: int = 0
    opened_at: float | None = None
    probes: dict[str, float] = Field(default_factory=dict, description="slot id → lease expiry")

    def effective_state(self, now: float, open_seconds: float) -> StateName:
        if self.state == "open" and self.opened_at is not None:
            return "open" if now < self.opened_at + open_seconds else "half_open"
        return self.state

    def live_probes(self, now: float) -> dict[str, float]:
        return {slot: expiry for slot, expiry in self.probes.items() if expiry > now}


@dataclass(frozen=True)
class _Snapshot:
    record: _Record
    etag: str | None
    fetched_at: float


@dataclass(frozen=True)
class _Permit:
    """Leave to make one call; `probe` names the half-open slot it holds, if any."""

    probe: str | None = None


class CircuitBreaker:
    """Guards calls to one dependency; every instance built on the same store shares it."""

    def __init__(
        self,
        store: DocumentStore,
        config: BreakerConfig,
        name: str = PAYMENT_GATEWAY_BREAKER,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._config = config
        self._id = f"breaker-{name}"
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._cached: _Snapshot | None = None

    def state(self) -> BreakerState:
        """The current state, from the process cache when it is fresh enough."""
        now = self._now()
        record = self._snapshot(now).record
        state = record.effective_state(now, self._config.open_seconds)
        retry_after = 0
        if state == "open" and record.opened_at is not None:
            retry_after = max(1, math.ceil(record.opened_at + self._config.open_seconds - now))
        return BreakerState(
            state=state,
            opened_at=(
                datetime.fromtimestamp(record.opened_at, UTC)
                if record.opened_at is not None
                else None
            ),
            retry_after_seconds=retry_after,
            consecutive_failures=record.consecutive_failures,
        )

    def call(self, operation: Callable[[], T]) -> T:
        """Run `operation` if the breaker allows it and record how it went.

        Raises BreakerOpen (a GatewayUnavailable) without running it when the breaker is open
        or every probe slot is taken.
        """
        permit = self._acquire()
        try:
            result = operation()
        except GatewayUnavailable:
            self._settle(lambda record, now: self._after_failure(record, now, permit))
            raise
        except StillProcessing:
            # A call with this key is still running there (perhaps one that timed out here):
            # no sign of health. Closed, it counts for nothing; a probe that meets it has not
            # shown the gateway well, so the breaker opens again.
            if permit.probe is not None:
                self._settle(lambda record, now: self._after_failure(record, now, permit))
            raise
        except (PaymentDeclined, OutcomeUnknown):
            self._settle(lambda record, now: self._after_success(record, permit))
            raise
        except BaseException:
            probe = permit.probe
            if probe is not None:
                self._settle(lambda record, now: self._without_probe(record, probe))
            raise
        self._settle(lambda record, now: self._after_success(record, permit))
        return result

    def admits(self) -> bool:
        """Whether `call` would run an operation now, judged from the cached state: closed, or
        half-open with a probe slot free. No write; a True may still meet a refusal in `call`
        when another instance takes the last probe slot first."""
        now = self._now()
        record = self._snapshot(now).record
        state = record.effective_state(now, self._config.open_seconds)
        if state == "closed":
            return True
        if state == "open":
            return False
        return len(record.live_probes(now)) < self._config.half_open_probes

    # ------------------------------------------------------------------ admission

    def _acquire(self) -> _Permit:
        now = self._now()
        record = self._snapshot(now).record
        state = record.effective_state(now, self._config.open_seconds)
        if state == "closed":
            return _Permit()
        if state == "open":
            raise self._refusal(record, now)
        if len(record.live_probes(now)) >= self._config.half_open_probes:
            raise self._refusal(record, now)

        slot = uuid.uuid4().hex
        try:
            record = self._write(lambda current, at: self._with_probe(current, at, slot))
        except Contended as contended:
            raise BreakerOpen(self._soon()) from contended
        if slot in record.probes:
            return _Permit(probe=slot)
        if record.effective_state(now, self._config.open_seconds) == "closed":
            return _Permit()
        raise self._refusal(record, now)

    def _refusal(self, record: _Record, now: float) -> BreakerOpen:
        if record.state == "open" and record.opened_at is not None:
            remaining = record.opened_at + self._config.open_seconds - now
            if remaining > 0:
                return BreakerOpen(remaining)
        return BreakerOpen(self._soon())

    def _soon(self) -> float:
        """When to come back after a refusal in half-open: the state may change by then."""
        return max(self._config.cache_seconds, 1.0)

    # ------------------------------------------------------------------ transitions
    # Each takes the current record and returns the one to write, or None to leave it as is.

    def _with_probe(self, record: _Record, now: float, slot: str) -> _Record | None:
        if record.effective_state(now, self._config.open_seconds) != "half_open":
            return None
        live = record.live_probes(now)
        if len(live) >= self._config.half_open_probes:
            return None
        live[slot] = now + self._config.probe_lease_seconds
        return record.model_copy(update={"state": "half_open", "probes": live})

    def _after_success(self, record: _Record, permit: _Permit) -> _Record | None:
        if permit.probe is not None:
            closed = _Record(id=record.id)
            if record == closed:
                return None
            if record.state != "closed":
                logger.info("circuit breaker %s closed: a probe call succeeded", record.id)
            return closed
        if record.state == "closed" and record.consecutive_failures > 0:
            return record.model_copy(update={"consecutive_failures": 0})
        return None

    def _after_failure(self, record: _Record, now: float, permit: _Permit) -> _Record | None:
        failures = record.consecutive_failures + 1
        if permit.probe is not None:
            logger.warning("circuit breaker %s reopened: a probe call failed", record.id)
            return _Record(id=record.id, state="open", consecutive_failures=failures, opened_at=now)
        if record.state != "closed":
            return None
        if failures >= self._config.failure_threshold:
            logger.warning(
                "circuit breaker %s opened after %d consecutive failures", record.id, failures
            )
            return _Record(id=record.id, state="open", consecutive_failures=failures, opened_at=now)
        return record.model_copy(update={"consecutive_failures": failures})

    def _without_probe(self, record: _Record, slot: str) -> _Record | None:
        if slot not in record.probes:
            return None
        probes = {other: expiry for other, expiry in record.probes.items() if other != slot}
        return record.model_copy(update={"probes": probes})

    # ------------------------------------------------------------------ shared state

    def _settle(self, transition: Callable[[_Record, float], _Record | None]) -> None:
        """Record an outcome. The call already happened: failing to record it must not mask
        its result, so store trouble is logged and the next outcome will do better."""
        try:
            self._write(transition)
        except (StoreError, Contended):
            logger.warning(
                "circuit breaker %s could not record an outcome", self._id, exc_info=True
            )

    def _write(self, transition: Callable[[_Record, float], _Record | None]) -> _Record:
        """Apply `transition` to the stored record with ETag concurrency; returns the result.

        The first attempt starts from the cached snapshot when it is fresh (often it is, and
        the ETag check catches it when it is not); later attempts read the store again.
        """
        first = True

        def attempt() -> _Record:
            nonlocal first
            now = self._now()
            snapshot = self._snapshot(now) if first else self._read(now)
            first = False
            updated = transition(snapshot.record, now)
            if updated is None:
                return snapshot.record
            document = updated.model_dump(by_alias=True)
            if snapshot.etag is None:
                stored = self._store.create(CONTROL.name, document)
            else:
                stored = self._store.replace(CONTROL.name, document, if_match=snapshot.etag)
            return self._remember(stored, now).record

        return retry_on_race(
            attempt, f"circuit breaker {self._id}", (PreconditionFailed, Conflict, NotFound)
        )

    def _snapshot(self, now: float) -> _Snapshot:
        with self._lock:
            cached = self._cached
        if cached is not None and now - cached.fetched_at < self._config.cache_seconds:
            return cached
        return self._read(now)

    def _read(self, now: float) -> _Snapshot:
        try:
            document = self._store.read(CONTROL.name, self._id, self._id)
        except NotFound:
            snapshot = _Snapshot(_Record(id=self._id), None, now)
            with self._lock:
                self._cached = snapshot
            return snapshot
        return self._remember(document, now)

    def _remember(self, document: dict[str, Any], now: float) -> _Snapshot:
        snapshot = _Snapshot(_Record.model_validate(document), document.get("_etag"), now)
        with self._lock:
            self._cached = snapshot
        return snapshot

    def _now(self) -> float:
        return self._clock.now().timestamp()


class GuardedPaymentGateway:
    """The PaymentGateway port, behind a circuit breaker: refused calls raise BreakerOpen."""

    def __init__(self, gateway: PaymentGateway, breaker: CircuitBreaker) -> None:
        self._gateway = gateway
        self._breaker = breaker

    def confirm(self, order_id: str, amount: int, order_name: str) -> PaymentApproval:
        return self._breaker.call(lambda: self._gateway.confirm(order_id, amount, order_name))

    def lookup(self, order_id: str) -> GatewayPayment | None:
        return self._breaker.call(lambda: self._gateway.lookup(order_id))

    def cancel(
        self,
        payment_key: str,
        reason: str,
        idempotency_key: str,
        cancel_amount: int | None = None,
    ) -> None:
        self._breaker.call(
            lambda: self._gateway.cancel(payment_key, reason, idempotency_key, cancel_amount)
        )

    def admits(self) -> bool:
        return self._breaker.admits() and self._gateway.admits()
