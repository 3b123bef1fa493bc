"""The saga sweeper: payment deadlines, and sagas whose messages were lost or dead-lettered,
driven on through the normal handlers (real embedded store; the gateway scripted)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.domain.commands import RegisterMusical
from shared.domain.events import Event, EventType
from shared.domain.models import Musical, PaymentStatus, ReservationStatus
from shared.handlers.musicals import MusicalDeps, get_musical, register_musical
from shared.handlers.notices import NoticeDeps, notify_payment_outcome
from shared.handlers.payments import (
    PaymentDeps,
    on_reservation_cancelled,
    on_reservation_placed,
    on_retry,
)
from shared.handlers.reservations import cancel_reservation
from shared.handlers.sweeper import Repair, SweepDeps, SweepPolicy, sweep
from shared.ports import NotFound
from shared.topology import MUSICALS, NOTICES, PAYMENTS
from tests.support.handler_deps import seated_deps
from tests.unit.test_payments import ScriptedGateway
from tests.unit.test_reservations import held_by, place, reservation_deps

DEADLINE = timedelta(hours=1)
REPAIR_AFTER = timedelta(seconds=180)


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, notice_id: str, customer_id: str, kind: str, message: str) -> None:
        self.sent.append((notice_id, kind))


@pytest.fixture
def gateway() -> ScriptedGateway:
    return ScriptedGateway()


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
def sweep_deps(store, bus, clock, gateway, sender) -> SweepDeps:
    payments = PaymentDeps(
        store=store,
        gateway=gateway,
        bus=bus,
        clock=clock,
        retry_delay=lambda n: 5.0 * n,
        payment_deadline=DEADLINE,
    )
    return SweepDeps(
        store=store,
        reservations=reservation_deps(store, clock),
        seated=seated_deps(store, clock),
        payments=payments,
        notices=NoticeDeps(store, sender, clock),
        clock=clock,
        policy=SweepPolicy(payment_deadline=DEADLINE, repair_after=REPAIR_AFTER),
    )


def outbox_event(store, musical_id: str, reservation_id: str, suffix: str) -> Event:
    return Event.model_validate(store.read(MUSICALS.name, musical_id, f"{reservation_id}.{suffix}"))


@pytest.fixture
def capped(store, clock) -> Musical:
    command = RegisterMusical(title="Wicked", seats=50, price=10, max_seats_per_customer=4)
    return register_musical(command, MusicalDeps(store, clock))


def test_an_expired_reservation_gives_its_seats_back_to_the_customers_allowance(
    store, clock, customer, capped, sweep_deps, gateway
):
    placed = place(store, capped, customer, clock.now(), seats=4).reservation
    gateway.mode = "down"
    on_reservation_placed(outbox_event(store, capped.id, placed.id, "placed"), sweep_deps.payments)
    assert held_by(store, capped, customer) == 4

    clock.advance(DEADLINE.total_seconds() + 10)
    assert sweep(sweep_deps).repairs[Repair.EXPIRED] == 1
    assert sweep(sweep_deps).repairs[Repair.EXPIRED] == 0  # once

    assert held_by(store, capped, customer) == 0
    assert place(store, capped, customer, clock.now(), seats=4).created


def current_deferral(store, reservation_id: str) -> int:
    return store.read(PAYMENTS.name, reservation_id, reservation_id)["deferrals"]


def payment_status(store, reservation_id: str) -> PaymentStatus:
    return PaymentStatus(store.read(PAYMENTS.name, reservation_id, reservation_id)["status"])


def test_the_deadline_expires_an_unpaid_reservation_and_gives_its_seats_back(
    store, clock, customer, musical, sweep_deps, gateway
):
    placed = place(store, musical, customer, clock.now()).reservation
    gateway.mode = "down"
    on_reservation_placed(outbox_event(store, musical.id, placed.id, "placed"), sweep_deps.payments)
    assert payment_status(store, placed.id) is PaymentStatus.DEFERRED

    clock.advance(DEADLINE.total_seconds() - 10)
    assert sweep(sweep_deps).repairs[Repair.EXPIRED] == 0  # not yet
    clock.advance(20)
    report = sweep(sweep_deps)

    assert report.repairs[Repair.EXPIRED] == 1
    expired = store.read(MUSICALS.name, musical.id, placed.id)
    assert expired["status"] == ReservationStatus.EXPIRED
    assert get_musical(musical.id, store).available_seats == 10
    event = outbox_event(store, musical.id, placed.id, "expired")
    assert event.event_type is EventType.RESERVATION_EXPIRED
    assert event.topic == "cancel"
    with pytest.raises(Exception, match="expired"):
        cancel_reservation(placed.id, customer, reservation_deps(store, clock))


def test_a_charge_that_lands_after_the_deadline_is_cancelled_and_nothing_stays_charged(
    store, clock, customer, musical, sweep_deps, gateway
):
    placed = place(store, musical, customer, clock.now()).reservation
    gateway.mode = "approve_then_timeout"  # charged, but the answer is lost
    on_reservation_placed(outbox_event(store, musical.id, placed.id, "placed"), sweep_deps.payments)
    clock.advance(DEADLINE.total_seconds() + 1)
    sweep(sweep_deps)
    gateway.mode = "approve"

    # What the payment function does with the ReservationExpired message on the cancel topic.
    expired = outbox_event(store, musical.id, placed.id, "expired")
    payment = on_reservation_cancelled(expired, sweep_deps.payments)

    assert payment.status is PaymentStatus.CANCELLED
    assert gateway.charges
    assert gateway.charged_now() == set()


def test_a_deferred_payment_is_not_charged_after_the_deadline_and_its_expiry_cancels_it(
    store, clock, customer, musical, sweep_deps, gateway
):
    placed = place(store, musical, customer, clock.now()).reservation
    gateway.mode = "down"
    on_reservation_placed(outbox_event(store, musical.id, placed.id, "placed"), sweep_deps.payments)
    calls = gateway.confirm_calls
    clock.advance(DEADLINE.total_seconds() + 1)
    gateway.mode = "approve"

    # The scheduled retry comes after the deadline, before the sweep: no charge is begun.
    retried = on_retry(placed.id, current_deferral(store, placed.id), sweep_deps.payments)
    assert retried.status is PaymentStatus.DEFERRED
    assert gateway.confirm_calls == calls

    assert sweep(sweep_deps).repairs[Repair.EXPIRED] == 1
    expired = outbox_event(store, musical.id, placed.id, "expired")
    payment = on_reservation_cancelled(expired, sweep_deps.payments)

    assert payment.status is PaymentStatus.CANCELLED
    assert gateway.confirm_calls == calls
    assert gateway.charges == {}


def payment_outcome_event(store, reservation_id: str, suffix: str) -> Event:
    return Event.model_validate(
        store.read(PAYMENTS.name, reservation_id, f"{reservation_id}.{suffix}")
    )


def expire(store, clock, customer, musical, sweep_deps, gateway, mode: str) -> tuple[str, Event]:
    """Place, let the gateway answer in `mode`, pass the deadline, and have the payment side
    handle the expiry: the reservation's id and its ReservationExpired event."""
    placed = place(store, musical, customer, clock.now()).reservation
    gateway.mode = mode
    on_reservation_placed(outbox_event(store, musical.id, placed.id, "placed"), sweep_deps.payments)
    clock.advance(DEADLINE.total_seconds() + 1)
    sweep(sweep_deps)
    gateway.mode = "approve"
    expired = outbox_event(store, musical.id, placed.id, "expired")
    on_reservation_cancelled(expired, sweep_deps.payments)
    clock.advance(60)  # past the confirm window: a lookup that finds nothing settles
    on_reservation_cancelled(expired, sweep_deps.payments)
    assert payment_status(store, placed.id) is PaymentStatus.CANCELLED
    return placed.id, expired


def test_an_expired_reservation_never_charged_gets_one_notice_saying_so(
    store, clock, customer, musical, sweep_deps, gateway, sender
):
    reservation_id, expired = expire(store, clock, customer, musical, sweep_deps, gateway, "down")
    cancelled = payment_outcome_event(store, reservation_id, "payment-cancelled")

    assert notify_payment_outcome(expired, NoticeDeps(store, sender, clock)) is None
    notice = notify_payment_outcome(cancelled, NoticeDeps(store, sender, clock))

    assert notice is not None
    assert notice.kind == "reservation-expired"
    assert "expired" in notice.message
    assert "you were not charged" in notice.message
    assert [kind for _, kind in sender.sent] == ["reservation-expired"]


def test_an_expired_reservation_whose_late_charge_was_refunded_gets_one_notice_saying_so(
    store, clock, customer, musical, sweep_deps, gateway, sender
):
    reservation_id, _ = expire(
        store, clock, customer, musical, sweep_deps, gateway, "approve_then_timeout"
    )
    cancelled = payment_outcome_event(store, reservation_id, "payment-cancelled")

    notice = notify_payment_outcome(cancelled, NoticeDeps(store, sender, clock))

    assert notice is not None
    assert notice.kind == "reservation-expired"
    assert f"the {musical.price * 2} charged for it was refunded" in notice.message
    assert "not charged" not in notice.message


def test_an_approval_that_crossed_the_expiry_sends_no_notice_of_its_own(
    store, clock, customer, musical, sweep_deps, gateway, sender
):
    placed = place(store, musical, customer, clock.now()).reservation
    gateway.mode = "down"
    on_reservation_placed(outbox_event(store, musical.id, placed.id, "placed"), sweep_deps.payments)
    clock.advance(DEADLINE.total_seconds() - 1)
    gateway.mode = "approve"

    def expire_meanwhile() -> None:
        clock.advance(2)
        sweep(sweep_deps)  # Expired while the charge begun in time is on its way

    gateway.before_answer = expire_meanwhile
    on_retry(placed.id, current_deferral(store, placed.id), sweep_deps.payments)
    approved = payment_outcome_event(store, placed.id, "payment-approved")
    on_reservation_cancelled(
        outbox_event(store, musical.id, placed.id, "expired"), sweep_deps.payments
    )
    cancelled = payment_outcome_event(store, placed.id, "payment-cancelled")

    for event in (approved, cancelled, approved):
        notify_payment_outcome(event, NoticeDeps(store, sender, clock))

    assert [kind for _, kind in sender.sent] == ["reservation-expired"]
    assert gateway.charged_now() == set()


@pytest.mark.parametrize("order", ["expiry first", "cancel first"])
def test_the_expiry_and_payment_cancel_messages_redelivered_in_any_order_give_one_notice(
    store, clock, customer, musical, sweep_deps, gateway, sender, order
):
    reservation_id, expired = expire(store, clock, customer, musical, sweep_deps, gateway, "down")
    cancelled = payment_outcome_event(store, reservation_id, "payment-cancelled")
    deliveries = [expired, cancelled, expired, cancelled]
    if order == "cancel first":
        deliveries.reverse()

    for event in deliveries:
        notify_payment_outcome(event, NoticeDeps(store, sender, clock))
    clock.advance(REPAIR_AFTER.total_seconds() + 1)
    report = sweep(sweep_deps)

    assert [kind for _, kind in sender.sent] == ["reservation-expired"]
    assert report.repairs[Repair.NOTICE_NOT_SENT] == 0


def test_the_sweeper_sends_an_expired_reservations_lost_notice_once(
    store, clock, customer, musical, sweep_deps, gateway, sender
):
    expire(store, clock, customer, musical, sweep_deps, gateway, "down")
    clock.advance(REPAIR_AFTER.total_seconds() + 1)

    first = sweep(sweep_deps)
    clock.advance(REPAIR_AFTER.total_seconds() + 1)
    second = sweep(sweep_deps)

    assert first.repairs[Repair.NOTICE_NOT_SENT] == 1
    assert second.repairs[Repair.NOTICE_NOT_SENT] == 0
    assert [kind for _, kind in sender.sent] == ["reservation-expired"]


def test_the_sweeper_drives_on_a_saga_whose_messages_were_all_lost(
    store, clock, customer, musical, sweep_deps, sender
):
    """ReservationPlaced dead-lettered, then PaymentApproved and its notice lost too: each run
    finds the next missing step, until the saga is at rest."""
    placed = place(store, musical, customer, clock.now()).reservation
    clock.advance(REPAIR_AFTER.total_seconds() + 1)

    first = sweep(sweep_deps)
    assert first.repairs == {Repair.PLACEMENT_NOT_HANDLED: 1}
    assert payment_status(store, placed.id) is PaymentStatus.APPROVED
    clock.advance(1)
    second = sweep(sweep_deps)
    assert second.repairs == {Repair.APPROVAL_NOT_APPLIED: 1}
    assert store.read(MUSICALS.name, musical.id, placed.id)["status"] == "Confirmed"
    clock.advance(REPAIR_AFTER.total_seconds() + 1)
    third = sweep(sweep_deps)
    assert third.repairs == {Repair.NOTICE_NOT_SENT: 1}
    assert sender.sent == [(f"{placed.id}.payment-approved", "payment-approved")]
    clock.advance(60)
    assert sweep(sweep_deps).repairs == {}  # at rest: nothing more to do, nothing sent twice
    assert len(sender.sent) == 1


def test_a_cancel_whose_message_was_lost_is_carried_to_the_payment(
    store, clock, customer, musical, sweep_deps, gateway
):
    placed = place(store, musical, customer, clock.now()).reservation
    on_reservation_placed(outbox_event(store, musical.id, placed.id, "placed"), sweep_deps.payments)
    cancel_reservation(placed.id, customer, reservation_deps(store, clock))
    clock.advance(REPAIR_AFTER.total_seconds() + 1)

    report = sweep(sweep_deps)

    assert report.repairs[Repair.CANCEL_NOT_HANDLED] == 1
    assert payment_status(store, placed.id) is PaymentStatus.CANCELLED
    assert gateway.charged_now() == set()


def test_a_healthy_saga_is_left_alone(store, clock, customer, musical, sweep_deps, sender):
    placed = place(store, musical, customer, clock.now()).reservation
    clock.advance(10)
    report = sweep(sweep_deps)
    assert report.repairs == {}
    assert report.examined == 0
    with pytest.raises(NotFound):
        store.read(NOTICES.name, customer.customer_id, f"{placed.id}.payment-approved")
