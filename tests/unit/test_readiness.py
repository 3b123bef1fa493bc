"""Readiness over the store, bus and breaker: what it checks and how it judges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devhost.embedded.bus_check import EmbeddedBusCheck
from shared.breaker import BreakerConfig, CircuitBreaker
from shared.handlers.readiness import CachedReadiness, ReadinessDeps, check_readiness
from shared.ports import GatewayUnavailable, OutboundMessage
from shared.topology import SUB_PAYMENT, TOPIC_RESERVATION, TOPICS
from tests.support.memory_store import MemoryDocumentStore


class UnreachableBus:
    def active_count(self, topic: str, subscription: str) -> int:
        raise ConnectionError("bus is gone")


@pytest.fixture
def breaker(store: MemoryDocumentStore) -> CircuitBreaker:
    return CircuitBreaker(store, BreakerConfig(failure_threshold=2, open_seconds=30))


def deps(store, bus, breaker) -> ReadinessDeps:
    return ReadinessDeps(store=store, bus=EmbeddedBusCheck(bus), breaker_state=breaker.state)


def fail(breaker: CircuitBreaker) -> None:
    def unavailable() -> None:
        raise GatewayUnavailable("503")

    with pytest.raises(GatewayUnavailable):
        breaker.call(unavailable)


def test_a_fresh_instance_is_ready_with_a_closed_breaker_and_an_empty_backlog(store, bus, breaker):
    report = check_readiness(deps(store, bus, breaker))

    assert report.status == "ready"
    assert {name: check.status for name, check in report.checks.items()} == {
        "store": "ok",
        "bus": "ok",
        "auth": "ok",
    }
    assert report.breaker is not None
    assert report.breaker.state == "closed"
    assert report.degraded == []
    expected_keys = {f"{t.name}/{s.name}" for t in TOPICS.values() for s in t.subscriptions}
    assert report.backlog == dict.fromkeys(expected_keys, 0)


def test_the_backlog_counts_deliverable_messages_but_not_scheduled_ones(store, bus, breaker):
    later = datetime.now(UTC) + timedelta(hours=1)
    bus.publish(
        TOPIC_RESERVATION,
        [
            OutboundMessage(body=b"{}", message_id="now-1", subject="ReservationPlaced"),
            OutboundMessage(body=b"{}", message_id="now-2", subject="ReservationPlaced"),
            OutboundMessage(
                body=b"{}", message_id="later", subject="PaymentRetry", scheduled_enqueue_time=later
            ),
        ],
    )

    report = check_readiness(deps(store, bus, breaker))

    assert report.backlog is not None
    assert report.backlog[f"{TOPIC_RESERVATION}/{SUB_PAYMENT}"] == 2


def test_an_open_breaker_leaves_the_instance_ready_but_degraded(store, bus, breaker):
    fail(breaker)
    fail(breaker)

    report = check_readiness(deps(store, bus, breaker))

    assert report.status == "ready"
    assert report.breaker is not None
    assert report.breaker.state == "open"
    assert report.breaker.retry_after_seconds > 0
    assert report.degraded == ["payment-gateway"]


def test_an_unreachable_bus_makes_the_instance_not_ready_and_shows_no_exception_text(
    store, breaker
):
    report = check_readiness(
        ReadinessDeps(
            store=store, bus=EmbeddedBusCheck(UnreachableBus()), breaker_state=breaker.state
        )
    )

    assert report.status == "not-ready"
    assert report.checks["bus"].status == "failing"
    assert "bus is gone" not in report.model_dump_json()
    assert report.checks["store"].status == "ok"
    assert report.backlog is None


def test_a_closed_store_makes_the_instance_not_ready_and_hides_the_breaker(bus):
    store = MemoryDocumentStore()
    breaker = CircuitBreaker(store, BreakerConfig(cache_seconds=0))
    store.close()

    report = check_readiness(deps(store, bus, breaker))

    assert report.status == "not-ready"
    assert report.checks["store"].status == "failing"
    assert report.checks["bus"].status == "ok"
    assert report.breaker is None


def test_the_report_is_cached_so_a_burst_of_probes_costs_one_check(store, bus, breaker):
    readiness = CachedReadiness(deps(store, bus, breaker), cache_seconds=60)
    first = readiness.report()
    bus.publish(
        TOPIC_RESERVATION,
        [OutboundMessage(body=b"{}", message_id="m", subject="ReservationPlaced")],
    )

    assert readiness.report() is first


def test_an_expired_report_is_checked_again(store, bus, breaker):
    readiness = CachedReadiness(deps(store, bus, breaker), cache_seconds=0)
    readiness.report()
    bus.publish(
        TOPIC_RESERVATION,
        [OutboundMessage(body=b"{}", message_id="m", subject="ReservationPlaced")],
    )

    assert readiness.report().backlog[f"{TOPIC_RESERVATION}/{SUB_PAYMENT}"] == 1


def test_the_json_body_has_the_documented_shape(store, bus, breaker):
    body = check_readiness(deps(store, bus, breaker)).model_dump(mode="json", by_alias=True)

    assert set(body) == {"status", "checks", "breaker", "degraded", "backlog"}
    assert set(body["checks"]["store"]) == {"status", "durationMs"}
    assert set(body["breaker"]) == {"state", "openedAt", "retryAfterSeconds", "consecutiveFailures"}


def test_an_app_without_its_token_settings_is_not_ready(store, bus, breaker):
    report = check_readiness(
        ReadinessDeps(
            store=store,
            bus=EmbeddedBusCheck(bus),
            breaker_state=breaker.state,
            auth_configured=False,
        )
    )

    assert report.status == "not-ready"
    assert report.checks["auth"].status == "failing"
    assert report.checks["store"].status == "ok"
