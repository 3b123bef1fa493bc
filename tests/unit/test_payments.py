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

from bench.counting_store import CountingStore
from shared.domain.events import Event, EventType, ReservationFacts
from shared.domain.models import Payment, PaymentStatus
from shared.handlers.payments import (
    RETRY_SUBJECT,
    PaymentDeps,
    advance,
    on_reservation_cancelled,
    on_reservation_placed,
    on_retry,
)
from shared.ports import (
    AlreadyProcessed,
    Condition,
    GatewayNotReached,
    GatewayPayment,
    GatewayUnavailable,
    MerchantRejected,
    PaymentApproval,
    PaymentDeclined,
    StillProcessing,
)
from shared.topology import PAYMENTS, SUB_PAYMENT, TOPIC_RESERVATION

RETRY_SECONDS = 5.0


@dataclass
class ScriptedGateway:
    """Behaves as docs/payment-gateway.md says, in `mode`: approve, decline, down (5xx), unreachable
    (connection refused), merchant (401), in_progress (409), or approve_then_timeout (charges,
    then the answer is lost). A lost answer is not stored: confirming that order again answers
    "already processed". `refund_mode` "down" makes cancels fail; `admitting` False is an open
    breaker in front of it."""

    mode: str = "approve"
    refund_mode: str = "ok"
    admitting: bool = True
    charges: dict[str, str] = field(default_factory=dict)
    amounts: dict[str, int] = field(default_factory=dict)
    refunds: dict[str, int] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)
    confirm_calls: int = 0
    lookups: int = 0
    cancel_amounts: list[int | None] = field(default_factory=list)
    before_answer: Callable[[], None] | None = None
    before_charge: Callable[[], None] | None = None
    _keys: itertools.count = field(default_factory=itertools.count)

    def confirm(self, order_id: str, amount: int, order_name: str) -> PaymentApproval:
        self.confirm_calls += 1
        if self.mode == "down":
            raise GatewayUnavailable("503")
        if self.mode == "unreachable":
            raise GatewayNotReached("connection refused")
        if self.mode == "merchant":
            raise MerchantRejected("UNAUTHORIZED_KEY", "bad key")
        if self.mode == "in_progress":
            raise StillProcessing("409")
        if order_id in self.charges and order_id not in self.answered:
            raise AlreadyProcessed("charged before")
        if self.mode == "decline":
            raise PaymentDeclined("REJECT_CARD_PAYMENT", "card refused")
        if self.before_charge:
            hook, self.before_charge = self.before_charge, None
            hook()
        key = self.charges.setdefault(order_id, f"pk-{next(self._keys)}")
        self.amounts[key] = amount
        if self.before_answer:
            self.before_answer()
        if self.mode == "approve_then_timeout":
            raise GatewayUnavailable("timeout")
        self.answered.add(order_id)
        return PaymentApproval(payment_key=key, approved_at=datetime.now())

    def lookup(self, order_id: str) -> GatewayPayment | None:
        self.lookups += 1
        if self.mode in ("down", "merchant"):
            raise GatewayUnavailable("503")
        key = self.charges.get(order_id)
        if key is None:
            return None
        balance = self.amounts[key] - self.refunds.get(key, 0)
        status = (
            "DONE"
            if key not in self.refunds
            else "CANCELED"
            if balance == 0
            else "PARTIAL_CANCELED"
        )
        return GatewayPayment(key, order_id, status, self.amounts[key], balance)

    def cancel(
        self,
        payment_key: str,
        reason: str,
        idempotency_key: str,
        cancel_amount: int | None = None,
    ) -> None:
        if self.mode == "down" or self.refund_mode == "down":
            raise GatewayUnavailable("503")
        self.cancel_amounts.append(cancel_amount)
        if payment_key not in self.refunds:
            balance = self.amounts[payment_key]
            self.refunds[payment_key] = balance if cancel_amount is None else cancel_amount

    def admits(self) -> bool:
        return self.admitting

    def charged_now(self) -> set[str]:
        """Orders holding a charge that was not wholly refunded."""
        return {
            order
            for order, key in self.charges.items()
            if self.refunds.get(key, 0) < self.amounts[key]
        }


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


# ------------------------------------------------------------- the gateway's awkward answers


def test_a_lost_answer_after_the_charge_ends_approved_with_exactly_one_charge(deps, gateway, clock):
    gateway.mode = "approve_then_timeout"
    deferred = on_reservation_placed(placed(clock), deps)
    gateway.mode = "approve"
    clock.advance(RETRY_SECONDS)

    payment = on_retry("r1", current_deferral(deps.store), deps)

    assert deferred.status is PaymentStatus.DEFERRED
    assert payment.status is PaymentStatus.APPROVED
    assert payment.payment_key == gateway.charges["r1"]
    assert gateway.lookups == 1  # "already processed" → looked up, not charged again
    assert len(gateway.charges) == 1


@pytest.mark.parametrize("mode", ["merchant", "in_progress"])
def test_a_merchant_error_or_a_call_in_progress_rejects_nobody_and_completes_later(
    deps, gateway, clock, store, mode
):
    gateway.mode = mode
    deferred = on_reservation_placed(placed(clock), deps)
    gateway.mode = "approve"
    clock.advance(RETRY_SECONDS)

    payment = on_retry("r1", current_deferral(deps.store), deps)

    assert deferred.status is PaymentStatus.DEFERRED
    assert payment.status is PaymentStatus.APPROVED
    assert "PaymentDeclined" not in payment_events(store)


def test_a_cancel_never_confirms_to_find_out_it_looks_the_order_up(deps, gateway, clock):
    gateway.mode = "approve_then_timeout"
    on_reservation_placed(placed(clock), deps)
    gateway.mode = "approve"
    clock.advance(RETRY_SECONDS)
    calls_before = gateway.confirm_calls

    on_reservation_cancelled(cancelled(clock), deps)
    payment = on_retry("r1", current_deferral(deps.store), deps)

    assert gateway.confirm_calls == calls_before
    assert gateway.lookups >= 1
    assert payment.status is PaymentStatus.CANCELLED
    assert payment.refunded_amount == 200
    assert gateway.charged_now() == set()


def test_a_cancel_crossing_an_approval_in_flight_leaves_nothing_charged(deps, gateway, clock):
    crossing: list[Payment] = []
    gateway.before_charge = lambda: crossing.append(
        on_reservation_cancelled(cancelled(clock), deps)
    )

    payment = on_reservation_placed(placed(clock), deps)

    assert crossing[0].status is not PaymentStatus.CANCELLED  # 404, but a confirm is in flight
    assert payment.status is PaymentStatus.CANCELLED
    assert payment.refunded
    assert gateway.charged_now() == set()


def test_a_lookup_that_finds_nothing_settles_once_no_confirm_can_be_in_flight(
    deps, gateway, clock, store
):
    gateway.mode = "in_progress"  # the confirm's outcome is unknown: it may yet charge
    on_reservation_placed(placed(clock), deps)
    gateway.mode = "approve"

    waiting = on_reservation_cancelled(cancelled(clock), deps)
    clock.advance(deps.confirm_window.total_seconds() + RETRY_SECONDS)
    payment = on_retry("r1", current_deferral(deps.store), deps)

    assert waiting.status is PaymentStatus.REFUNDING
    assert payment.status is PaymentStatus.CANCELLED
    assert not payment.refunded
    assert gateway.lookups >= 1
    assert gateway.charges == {}


def test_a_failing_refund_shows_refunding_and_is_retried_until_it_completes(
    deps, gateway, clock, store
):
    on_reservation_placed(placed(clock), deps)
    gateway.refund_mode = "down"

    waiting = on_reservation_cancelled(cancelled(clock), deps)
    for _ in range(3):
        clock.advance(RETRY_SECONDS * (current_deferral(deps.store) + 1))
        still = on_retry("r1", current_deferral(deps.store), deps)
        assert still.status is PaymentStatus.REFUNDING
    gateway.refund_mode = "ok"
    clock.advance(RETRY_SECONDS * (current_deferral(deps.store) + 1))
    done = on_retry("r1", current_deferral(deps.store), deps)

    assert waiting.status is PaymentStatus.REFUNDING
    assert done.status is PaymentStatus.CANCELLED
    assert done.refunded_amount == 200
    assert gateway.charged_now() == set()
    assert payment_events(store) == ["PaymentApproved", "PaymentCancelled"]


def test_a_cancel_that_keeps_a_fee_refunds_only_the_refund_amount(deps, gateway, clock):
    on_reservation_placed(placed(clock), deps)
    event = cancelled(clock)
    event = event.model_copy(update={"payload": {**event.payload, "refundAmount": 140}})

    payment = on_reservation_cancelled(event, deps)

    assert gateway.cancel_amounts == [140]
    assert payment.status is PaymentStatus.CANCELLED
    assert payment.refunded_amount == 140


def test_a_reservation_of_amount_zero_is_approved_without_the_gateway(deps, gateway, clock):
    event = placed(clock)
    event = event.model_copy(update={"payload": {**event.payload, "amount": 0}})

    payment = on_reservation_placed(event, deps)

    assert payment.status is PaymentStatus.APPROVED
    assert gateway.confirm_calls == 0


def test_advance_re_drives_a_payment_whose_retry_message_was_lost(deps, gateway, clock, bus):
    gateway.mode = "down"
    on_reservation_placed(placed(clock), deps)
    clock.advance(RETRY_SECONDS + 1)
    bus.receive(TOPIC_RESERVATION, SUB_PAYMENT, max_messages=10)  # taken, never completed
    gateway.mode = "approve"

    payment = advance("r1", deps)

    assert payment.status is PaymentStatus.APPROVED


# ------------------------------------------------------------------- no write storm while down


def test_a_retry_the_breaker_would_refuse_costs_one_write_and_counts_no_attempt(
    store, gateway, bus, clock
):
    counting = CountingStore(store)
    deps = PaymentDeps(
        store=counting,
        gateway=gateway,
        bus=bus,
        clock=clock,
        retry_delay=lambda deferrals: RETRY_SECONDS,
    )
    gateway.admitting = False
    created = on_reservation_placed(placed(clock), deps)
    assert sum(counting.writes.values()) == 1  # created Deferred, with its event
    clock.advance(RETRY_SECONDS)
    counting.reset()

    payment = on_retry("r1", created.deferrals, deps)

    assert sum(counting.writes.values()) == 1
    assert payment.confirm_attempts == 0
    assert payment.deferrals == 2
    assert gateway.confirm_calls == 0
