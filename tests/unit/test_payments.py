"""The payment side of the saga under redelivery, reordering and every gateway answer.

The gateway is the one boundary faked here: a scripted stand-in that behaves like the real one
(confirm is idempotent per order id) and remembers what it charged and refunded.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from shared.domain.events import Event, EventType, ReservationFacts
from shared.domain.models import Payment, PaymentStatus
from shared.handlers.payments import (
    RETRY_SUBJECT,
    PaymentDeps,
    on_reservation_cancelled,
    on_reservation_placed,
    on_retry,
)
from shared.ports import (
    Condition,
    GatewayNotReached,
    GatewayUnavailable,
    PaymentApproval,
    PaymentDeclined,
)
from shared.topology import PAYMENTS, SUB_PAYMENT, TOPIC_RESERVATION

RETRY_SECONDS = 5.0


@dataclass
class ScriptedGateway:
    """Answers `mode`: approve, decline, down (5xx), unreachable (connection refused), or
    approve_then_timeout (charges, then times out)."""

    mode: str = "approve"
    charges: dict[str, str] = field(default_factory=dict)
    refunds: set[str] = field(default_factory=set)
    refunded_amounts: dict[str, int | None] = field(default_factory=dict)
    confirm_calls: int = 0
    before_answer: Callable[[], None] | None = None
    _keys: itertools.count = field(default_factory=itertools.count)

    def confirm(self, order_id: str, amount: int, order_name: str) -> PaymentApproval:
        self.confirm_calls += 1
        if self.mode == "down":
            raise GatewayUnavailable("503")
        if self.mode == "unreachable":
            raise GatewayNotReached("connection refused")
        if self.mode == "decline":
            raise PaymentDeclined("REJECT_CARD_PAYMENT", "card refused")
        key = self.charges.setdefault(order_id, f"pk-{next(self._keys)}")
        if self.before_answer:
            self.before_answer()
        if self.mode == "approve_then_timeout":
            raise GatewayUnavailable("timeout")
        return PaymentApproval(payment_key=key, approved_at=datetime.now())

    def cancel(
        self,
        payment_key: str,
        reason: str,
        idempotency_key: str,
        cancel_amount: int | None = None,
    ) -> None:
        if self.mode == "down":
            raise GatewayUnavailable("503")
        self.refunds.add(payment_key)
        self.refunded_amounts[payment_key] = cancel_amount

    def charged_now(self) -> set[str]:
        """Orders holding a charge that was not refunded."""
        return {order for order, key in self.charges.items() if key not in self.refunds}


@pytest.fixture
def gateway() -> ScriptedGateway:
    return ScriptedGateway()


@pytest.fixture
def deps(store, gateway, bus, clock) -> PaymentDeps:
    return PaymentDeps(
        store=store,
        gateway=gateway,
        bus=bus,
        clock=clock,
        retry_delay=lambda deferrals: RETRY_SECONDS * deferrals,
    )


def reservation_event(event_type: EventType, clock, reservation_id: str = "r1") -> Event:
    facts = ReservationFacts(
        reservation_id=reservation_id,
        musical_id="m1",
        musical_title="Hamilton",
        customer_id="alice",
        seats=2,
        amount=200,
        created_at=clock.now(),
    )
    return Event(
        event_id=f"{reservation_id}.{event_type}",
        event_type=event_type,
        correlation_id="corr",
        occurred_at=clock.now(),
        payload=facts.to_json_dict(),
    )


def payment_events(store, reservation_id: str = "r1") -> list[str]:
    page = store.query(PAYMENTS.name, reservation_id, where=[Condition("type", "=", "event")])
    return sorted(doc["eventType"] for doc in page.items)


def current_deferral(store) -> int:
    return Payment.from_document(store.read(PAYMENTS.name, "r1", "r1")).deferrals


def placed(clock):
    return reservation_event(EventType.RESERVATION_PLACED, clock)


def cancelled(clock):
    return reservation_event(EventType.RESERVATION_CANCELLED, clock)


def test_a_placed_reservation_is_charged_once_even_when_redelivered(deps, gateway, clock, store):
    first = on_reservation_placed(placed(clock), deps)
    again = on_reservation_placed(placed(clock), deps)

    assert first.status is PaymentStatus.APPROVED
    assert again.payment_key == first.payment_key
    assert gateway.confirm_calls == 1
    assert payment_events(store) == ["PaymentApproved"]


def test_a_declined_payment_is_final_and_recorded(deps, gateway, clock, store):
    gateway.mode = "decline"

    payment = on_reservation_placed(placed(clock), deps)
    on_reservation_placed(placed(clock), deps)

    assert payment.status is PaymentStatus.DECLINED
    assert payment.decline_code == "REJECT_CARD_PAYMENT"
    assert gateway.confirm_calls == 1
    assert payment_events(store) == ["PaymentDeclined"]


def test_a_failing_gateway_defers_the_payment_and_schedules_a_retry(
    deps, gateway, clock, store, bus
):
    gateway.mode = "down"

    payment = on_reservation_placed(placed(clock), deps)

    assert payment.status is PaymentStatus.DEFERRED
    assert payment.next_attempt_at is not None
    assert payment_events(store) == ["PaymentDeferred"]
    assert bus.receive(TOPIC_RESERVATION, SUB_PAYMENT) == []  # not before its time
    clock.advance(RETRY_SECONDS + 1)
    assert len(bus.receive(TOPIC_RESERVATION, SUB_PAYMENT)) == 1


def test_a_deferred_payment_completes_on_retry_once_the_gateway_is_back(
    deps, gateway, clock, store
):
    gateway.mode = "down"
    on_reservation_placed(placed(clock), deps)
    clock.advance(RETRY_SECONDS)
    on_retry("r1", current_deferral(deps.store), deps)
    gateway.mode = "approve"
    early = on_retry("r1", 1, deps)  # the first retry again, before the second is due
    clock.advance(2 * RETRY_SECONDS)

    payment = on_retry("r1", current_deferral(deps.store), deps)

    assert early.status is PaymentStatus.DEFERRED

    assert payment.status is PaymentStatus.APPROVED
    assert payment.deferrals == 2
    assert payment_events(store) == ["PaymentApproved", "PaymentDeferred"]


def test_the_retry_arrives_when_due_with_a_stable_id_per_deferral(deps, gateway, clock, bus):
    gateway.mode = "down"
    on_reservation_placed(placed(clock), deps)
    on_reservation_placed(placed(clock), deps)  # a redelivery schedules nothing new

    clock.advance(RETRY_SECONDS + 1)
    [retry] = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT, max_messages=10)

    assert retry.subject == RETRY_SUBJECT
    assert retry.message_id == "r1.retry.1"
    assert retry.correlation_id == "corr"


def test_a_cancel_before_the_placement_means_never_charged(deps, gateway, clock, store):
    on_reservation_cancelled(cancelled(clock), deps)
    payment = on_reservation_placed(placed(clock), deps)

    assert payment.status is PaymentStatus.CANCELLED
    assert gateway.confirm_calls == 0
    assert payment_events(store) == ["PaymentCancelled"]


def test_a_cancel_after_approval_refunds_once(deps, gateway, clock, store):
    on_reservation_placed(placed(clock), deps)

    payment = on_reservation_cancelled(cancelled(clock), deps)
    again = on_reservation_cancelled(cancelled(clock), deps)

    assert payment.status is PaymentStatus.CANCELLED
    assert payment.refunded
    assert again.refunded
    assert gateway.charged_now() == set()
    assert payment_events(store) == ["PaymentApproved", "PaymentCancelled"]


def test_an_approval_redelivered_after_the_cancel_charges_nobody(deps, gateway, clock, store):
    on_reservation_placed(placed(clock), deps)
    on_reservation_cancelled(cancelled(clock), deps)

    payment = on_reservation_placed(placed(clock), deps)

    assert payment.status is PaymentStatus.CANCELLED
    assert gateway.confirm_calls == 1
    assert gateway.charged_now() == set()


def test_a_decline_after_the_cancel_leaves_nothing_charged(deps, gateway, clock, store):
    gateway.mode = "decline"
    on_reservation_placed(placed(clock), deps)

    payment = on_reservation_cancelled(cancelled(clock), deps)

    assert payment.status is PaymentStatus.DECLINED
    assert gateway.charged_now() == set()


def test_a_cancel_arriving_while_the_gateway_approves_is_refunded(deps, gateway, clock, store):
    gateway.before_answer = lambda: (
        setattr(gateway, "before_answer", None),
        on_reservation_cancelled(cancelled(clock), deps),
    )

    payment = on_reservation_placed(placed(clock), deps)

    assert payment.status is PaymentStatus.CANCELLED
    assert payment.refunded
    assert gateway.charged_now() == set()


def test_a_timeout_after_the_gateway_approved_is_reconciled_by_the_cancel(
    deps, gateway, clock, store
):
    gateway.mode = "approve_then_timeout"
    deferred = on_reservation_placed(placed(clock), deps)
    assert deferred.status is PaymentStatus.DEFERRED
    assert gateway.charged_now() == {"r1"}
    gateway.mode = "approve"

    waiting = on_reservation_cancelled(cancelled(clock), deps)
    clock.advance(RETRY_SECONDS)
    payment = on_retry("r1", current_deferral(deps.store), deps)

    assert waiting.cancel_requested  # the refund waits for the scheduled retry
    assert payment.status is PaymentStatus.CANCELLED
    assert gateway.charged_now() == set()


def test_a_timeout_after_approval_then_a_retry_charges_exactly_once(deps, gateway, clock):
    gateway.mode = "approve_then_timeout"
    on_reservation_placed(placed(clock), deps)
    gateway.mode = "approve"
    clock.advance(RETRY_SECONDS)

    payment = on_retry("r1", current_deferral(deps.store), deps)

    assert payment.status is PaymentStatus.APPROVED
    assert len(gateway.charges) == 1
    assert payment.payment_key == gateway.charges["r1"]


def test_a_refund_that_cannot_reach_the_gateway_is_retried_later(deps, gateway, clock, bus):
    on_reservation_placed(placed(clock), deps)
    gateway.mode = "down"

    waiting = on_reservation_cancelled(cancelled(clock), deps)
    assert waiting.cancel_requested
    assert not waiting.refunded
    gateway.mode = "approve"
    clock.advance(RETRY_SECONDS)
    done = on_retry("r1", current_deferral(deps.store), deps)

    assert done.status is PaymentStatus.CANCELLED
    assert done.refunded
    assert gateway.charged_now() == set()


def test_stored_payments_round_trip(deps, clock, store):
    on_reservation_placed(placed(clock), deps)
    payment = Payment.from_document(store.read(PAYMENTS.name, "r1", "r1"))
    assert payment.order_name == "Hamilton x2"


def test_a_cancel_after_attempts_that_never_reached_the_gateway_charges_nothing(
    deps, gateway, clock, store
):
    gateway.mode = "unreachable"
    deferred = on_reservation_placed(placed(clock), deps)
    gateway.mode = "approve"

    payment = on_reservation_cancelled(cancelled(clock), deps)

    assert deferred.confirm_attempts == 0
    assert payment.status is PaymentStatus.CANCELLED
    assert gateway.charges == {}


def test_a_retry_delivered_a_little_early_by_the_bus_still_goes_ahead(deps, gateway, clock, store):
    gateway.mode = "down"
    deferred = on_reservation_placed(placed(clock), deps)
    gateway.mode = "approve"

    payment = on_retry("r1", deferred.deferrals, deps)  # this clock says: not yet due

    assert payment.status is PaymentStatus.APPROVED


def test_a_stale_retry_before_the_next_due_time_waits_for_its_successor(
    deps, gateway, clock, store
):
    gateway.mode = "down"
    on_reservation_placed(placed(clock), deps)
    clock.advance(RETRY_SECONDS)
    on_retry("r1", 1, deps)  # second deferral scheduled
    gateway.mode = "approve"

    payment = on_retry("r1", 1, deps)  # a duplicate of the first retry

    assert payment.status is PaymentStatus.DEFERRED
    assert payment.deferrals == 2


def test_a_seated_cancel_refunds_only_the_amount_left_after_its_fee(deps, gateway, clock, store):
    payment = on_reservation_placed(placed(clock), deps)
    cancel = cancelled(clock)
    cancel.payload.update(cancellationFee=20, refundAmount=180)

    refunded = on_reservation_cancelled(cancel, deps)

    assert refunded.status is PaymentStatus.CANCELLED
    assert (refunded.cancellation_fee, refunded.refund_amount) == (20, 180)
    assert gateway.refunded_amounts == {payment.payment_key: 180}


def test_a_general_admission_cancel_refunds_the_whole_balance(deps, gateway, clock):
    payment = on_reservation_placed(placed(clock), deps)

    on_reservation_cancelled(cancelled(clock), deps)

    assert gateway.refunded_amounts == {payment.payment_key: None}
