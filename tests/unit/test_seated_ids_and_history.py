"""Seated reservation ids, the payment deadline of a seated reservation, and what its history
item and its cancel notice say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from shared.domain.events import EventType, PaymentFacts, reservation_event
from shared.domain.ids import (
    musical_id_of,
    new_musical_id,
    new_performance_id,
    new_reservation_id,
    new_reservation_suffix,
    seated_partition_of,
    seated_reservation_id,
)
from shared.domain.models import NoticeKind, ReservationStatus
from shared.domain.performances import SeatedReservation, payment_deadline
from shared.handlers.notices import _message
from shared.projection.facts import facts_of
from shared.projection.history_item import HistoryItem

SEOUL = timezone(timedelta(hours=9))
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_a_seated_reservation_id_names_its_section_partition_within_64_characters() -> None:
    performance_id = new_performance_id()
    reservation_id = seated_reservation_id(performance_id, "ABCDEFGH", new_reservation_suffix())

    assert len(reservation_id) <= 64
    assert seated_partition_of(reservation_id) == (performance_id, "ABCDEFGH")
    assert musical_id_of(reservation_id) is None


def test_a_general_admission_id_is_not_taken_for_a_seated_one() -> None:
    assert seated_partition_of(new_reservation_id(new_musical_id())) is None


def test_the_payment_deadline_of_a_seated_reservation_is_never_after_its_start() -> None:
    soon = NOW + timedelta(hours=3)

    day = timedelta(days=1)

    assert payment_deadline(NOW, day, soon) == soon
    assert payment_deadline(NOW, day, NOW + timedelta(days=5)) == NOW + day
    assert payment_deadline(NOW, day, None) == NOW + day


def seated(status: ReservationStatus, **extra) -> SeatedReservation:
    return SeatedReservation(
        id=seated_reservation_id("a" * 24, "B", new_reservation_suffix()),
        musical_id="m" * 32,
        musical_title="Phantom",
        customer_id="alice",
        seats=2,
        amount=1000,
        status=status,
        correlation_id="corr",
        created_at=NOW,
        updated_at=NOW,
        performance_id="a" * 24,
        section_id="B",
        starts_at=datetime(2026, 12, 10, 19, 0, tzinfo=SEOUL),
        seat_ids=["B-1-1", "B-1-2"],
        **extra,
    )


def test_the_history_item_of_a_cancelled_seated_reservation_shows_its_seats_fee_and_refund():
    placed = seated(ReservationStatus.RESERVED)
    cancelled = placed.model_copy(
        update={
            "status": ReservationStatus.CANCELLED,
            "cancellation_fee": 100,
            "refund_amount": 900,
        }
    )
    documents = [
        reservation_event(EventType.RESERVATION_PLACED, placed, NOW).to_document(
            "partitionKey", "p"
        ),
        reservation_event(EventType.RESERVATION_CANCELLED, cancelled, NOW).to_document(
            "partitionKey", "p"
        ),
    ]

    item = HistoryItem.from_facts([fact for d in documents for fact in facts_of(d)]).to_api()

    assert item["seatIds"] == ["B-1-1", "B-1-2"]
    assert item["performanceId"] == "a" * 24
    assert item["startsAt"] == "2026-12-10T19:00:00+09:00"
    assert (item["cancellationFee"], item["refundAmount"]) == (100, 900)


def test_the_history_item_of_a_general_admission_reservation_has_its_seated_fields_null():
    document = seated(ReservationStatus.RESERVED).to_document()
    for name in ("performanceId", "startsAt", "seatIds", "sectionId"):
        document.pop(name)

    item = HistoryItem.from_facts(facts_of(document)).to_api()

    assert item["seatIds"] is None
    assert item["performanceId"] is None
    assert item["cancellationFee"] is None


def test_the_cancel_notice_states_the_fee_kept_and_the_refund():
    facts = PaymentFacts(
        reservation_id="r",
        musical_id="m",
        customer_id="alice",
        amount=1000,
        order_name="Phantom x2",
        refunded_amount=900,
    )

    message = _message(NoticeKind.PAYMENT_CANCELLED, facts)

    assert "fee of 100 was kept" in message
    assert "900 of your payment of 1000 was refunded" in message
