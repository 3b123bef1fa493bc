"""Notices go out once per (reservation, kind); the relay publishes committed events only."""

from __future__ import annotations

import json

import pytest

from shared.domain.events import Event, EventType, PaymentFacts
from shared.domain.models import Notice, NoticeKind, NoticeStatus
from shared.handlers.notices import SENDING_LEASE, NoticeDeps, notify_payment_outcome
from shared.handlers.relay import relay_outbox
from shared.topology import NOTICES, PAYMENTS, SUB_NOTICE, SUB_RESERVATION, TOPIC_PAYMENT


class RecordingSender:
    def __init__(self, failures: int = 0) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self._failures = failures

    def send(self, notice_id: str, customer_id: str, kind: str, message: str) -> None:
        if self._failures:
            self._failures -= 1
            raise ConnectionError("provider down")
        self.sent.append((notice_id, customer_id, kind))


def payment_event(event_type: EventType, clock, refunded_amount: int | None = None) -> Event:
    facts = PaymentFacts(
        reservation_id="r1",
        musical_id="m1",
        customer_id="alice",
        amount=200,
        order_name="Cats x2",
        refunded_amount=refunded_amount,
    )
    return Event(
        event_id=f"r1.{event_type}",
        event_type=event_type,
        correlation_id="corr",
        occurred_at=clock.now(),
        payload=facts.to_json_dict(),
    )


def test_an_approval_sends_one_notice_even_when_redelivered(store, clock):
    sender = RecordingSender()
    event = payment_event(EventType.PAYMENT_APPROVED, clock)

    first = notify_payment_outcome(event, NoticeDeps(store, sender, clock))
    notify_payment_outcome(event, NoticeDeps(store, sender, clock))

    assert sender.sent == [("r1.payment-approved", "alice", NoticeKind.PAYMENT_APPROVED)]
    assert first.status is NoticeStatus.SENT
    assert "Cats x2" in first.message


def test_an_approval_wishes_a_good_show(store, clock):
    notice = notify_payment_outcome(
        payment_event(EventType.PAYMENT_APPROVED, clock),
        NoticeDeps(store, RecordingSender(), clock),
    )

    assert notice.message.endswith("Enjoy the show!")


def test_an_approval_of_a_reservation_cancelled_since_wishes_no_show(store, clock):
    store.create(
        PAYMENTS.name,
        {"id": "r1", "reservationId": "r1", "type": "payment", "cancelRequested": True},
    )

    notice = notify_payment_outcome(
        payment_event(EventType.PAYMENT_APPROVED, clock),
        NoticeDeps(store, RecordingSender(), clock),
    )

    assert "Enjoy" not in notice.message
    assert "refunded" in notice.message


def test_a_cancel_that_refunded_a_charge_says_refunded_and_how_much(store, clock):
    notice = notify_payment_outcome(
        payment_event(EventType.PAYMENT_CANCELLED, clock, refunded_amount=200),
        NoticeDeps(store, RecordingSender(), clock),
    )

    assert "200 of your payment of 200 was refunded" in notice.message
    assert "not charged" not in notice.message
    assert "fee" not in notice.message


def test_a_cancel_that_kept_a_fee_says_what_was_refunded_and_kept(store, clock):
    notice = notify_payment_outcome(
        payment_event(EventType.PAYMENT_CANCELLED, clock, refunded_amount=140),
        NoticeDeps(store, RecordingSender(), clock),
    )

    assert "140 of your payment of 200 was refunded" in notice.message
    assert "fee of 60" in notice.message


def test_a_cancel_before_any_charge_says_not_charged(store, clock):
    notice = notify_payment_outcome(
        payment_event(EventType.PAYMENT_CANCELLED, clock),
        NoticeDeps(store, RecordingSender(), clock),
    )

    assert "not charged" in notice.message
    assert "refund" not in notice.message


def test_a_notice_whose_sending_failed_is_sent_on_redelivery(store, clock):
    sender = RecordingSender(failures=1)
    event = payment_event(EventType.PAYMENT_CANCELLED, clock)

    with pytest.raises(ConnectionError):
        notify_payment_outcome(event, NoticeDeps(store, sender, clock))
    pending = Notice.from_document(store.read(NOTICES.name, "alice", "r1.payment-cancelled"))
    notify_payment_outcome(event, NoticeDeps(store, sender, clock))

    assert pending.status is NoticeStatus.PENDING
    assert len(sender.sent) == 1


def test_deferrals_send_no_notice(store, clock):
    sender = RecordingSender()

    assert (
        notify_payment_outcome(
            payment_event(EventType.PAYMENT_DEFERRED, clock), NoticeDeps(store, sender, clock)
        )
        is None
    )
    assert sender.sent == []


def test_the_relay_publishes_outbox_events_to_their_topic_once(bus, clock):
    event = payment_event(EventType.PAYMENT_APPROVED, clock)
    documents = [
        event.to_document("reservationId", "r1"),
        {"id": "r1", "reservationId": "r1", "type": "payment"},
    ]

    assert relay_outbox(documents, bus) == 1
    relay_outbox(documents, bus)  # a replayed batch: dropped as a duplicate

    [for_notices] = bus.receive(TOPIC_PAYMENT, SUB_NOTICE, max_messages=10)
    [for_reservations] = bus.receive(TOPIC_PAYMENT, SUB_RESERVATION, max_messages=10)
    assert for_notices.message_id == event.event_id
    assert for_notices.subject == "PaymentApproved"
    assert for_notices.correlation_id == "corr"
    assert json.loads(for_reservations.body)["payload"]["reservationId"] == "r1"


def test_events_without_a_topic_are_not_relayed(bus, clock):
    deferred = payment_event(EventType.PAYMENT_DEFERRED, clock)
    document = deferred.to_document("reservationId", "r1") | {"topic": None}

    assert relay_outbox([document], bus) == 0
    assert bus.receive(TOPIC_PAYMENT, SUB_NOTICE) == []


def store_claimed_notice(store, clock, kind: NoticeKind) -> str:
    """A notice another delivery has claimed (its lease still running) but not yet sent."""
    notice = Notice(
        id=Notice.id_for("r1", kind),
        customer_id="alice",
        reservation_id="r1",
        musical_id="m1",
        kind=kind,
        message="claimed by another delivery",
        status=NoticeStatus.PENDING,
        correlation_id="corr",
        created_at=clock.now(),
        sending_until=clock.now() + SENDING_LEASE,
    )
    store.create(NOTICES.name, notice.to_document())
    return notice.id


def test_a_second_delivery_waits_for_the_first_sender_instead_of_sending_too(store, clock):
    sender = RecordingSender()
    notice_id = store_claimed_notice(store, clock, NoticeKind.PAYMENT_APPROVED)

    def the_first_delivery_finishes() -> None:
        current = Notice.from_document(store.read(NOTICES.name, "alice", notice_id))
        sent = current.model_copy(update={"status": NoticeStatus.SENT, "sent_at": clock.now()})
        store.replace(NOTICES.name, sent.to_document())

    notice = notify_payment_outcome(
        payment_event(EventType.PAYMENT_APPROVED, clock),
        NoticeDeps(store, sender, clock, pause=lambda _: the_first_delivery_finishes()),
    )

    assert notice.status is NoticeStatus.SENT
    assert sender.sent == []


def test_a_crashed_senders_lease_runs_out_and_the_notice_is_sent(store, clock):
    sender = RecordingSender()
    store_claimed_notice(store, clock, NoticeKind.PAYMENT_CANCELLED)

    notice = notify_payment_outcome(
        payment_event(EventType.PAYMENT_CANCELLED, clock),
        NoticeDeps(
            store, sender, clock, pause=lambda _: clock.advance(SENDING_LEASE.total_seconds())
        ),
    )

    assert notice.status is NoticeStatus.SENT
    assert len(sender.sent) == 1
