"""The history projection: order-free, duplicate-free, never backwards, rebuildable.

Reservation documents and events come from the real reservation handlers; payment and notice
documents are built from the domain models, as their handlers write them.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest

from shared.domain.caller import Caller
from shared.domain.commands import PlaceReservation
from shared.domain.events import Event, EventType, payment_event
from shared.domain.models import (
    Musical,
    Notice,
    NoticeKind,
    NoticeStatus,
    Payment,
    PaymentStatus,
    Reservation,
    ReservationStatus,
)
from shared.handlers.reservations import (
    apply_payment_outcome,
    cancel_reservation,
    place_reservation,
)
from shared.ports import Condition
from shared.projection.facts import facts_of
from shared.projection.feeds import HISTORY_FEEDS
from shared.projection.history_item import HistoryItem
from shared.projection.rebuild import rebuild_history
from shared.topology import CUSTOMER_CENTER, MUSICALS, NOTICES, PAYMENTS
from tests.support.handler_deps import reservation_deps
from tests.support.manual_clock import ManualClock
from tests.support.projection import project

Document = dict[str, Any]


# --------------------------------------------------------------------------- the write side


def place(store, musical: Musical, customer: Caller, now: datetime) -> Reservation:
    command = PlaceReservation(musical_id=musical.id, seats=2)
    deps = reservation_deps(store, ManualClock(now))
    placed = asyncio.run(place_reservation(command, customer, "corr", None, deps))
    return placed.reservation


def reservation_doc(store, reservation: Reservation) -> Document:
    return store.read(MUSICALS.name, reservation.musical_id, reservation.id)


def event_doc(store, reservation: Reservation, suffix: str) -> Document:
    return store.read(MUSICALS.name, reservation.musical_id, f"{reservation.id}.{suffix}")


def payment_of(reservation: Reservation, status: PaymentStatus, at: datetime) -> Payment:
    return Payment(
        id=reservation.id,
        reservation_id=reservation.id,
        musical_id=reservation.musical_id,
        customer_id=reservation.customer_id,
        amount=reservation.amount,
        order_name=f"{reservation.musical_title} x{reservation.seats}",
        status=status,
        correlation_id="corr",
        payment_key="pk-1" if status is not PaymentStatus.PENDING else None,
        created_at=reservation.created_at,
        updated_at=at,
    )


def record_payment(store, reservation, status, event_type, at) -> tuple[Document, Event | None]:
    """Write the payment document (and its event) as the payment handler does."""
    payment = payment_of(reservation, status, at)
    document = store.upsert(PAYMENTS.name, payment.to_document())
    if event_type is None:
        return document, None
    event = payment_event(event_type, payment, at)
    store.create(PAYMENTS.name, event.to_document("reservationId", reservation.id))
    return document, event


def sent_notice(reservation: Reservation, kind: NoticeKind, at: datetime) -> Document:
    return Notice(
        id=Notice.id_for(reservation.id, kind),
        customer_id=reservation.customer_id,
        reservation_id=reservation.id,
        musical_id=reservation.musical_id,
        kind=kind,
        message=f"{kind} for {reservation.id}",
        status=NoticeStatus.SENT,
        correlation_id="corr",
        created_at=at,
        sent_at=at,
    ).to_document()


def approved_then_cancelled(store, clock, musical, customer) -> list[Document]:
    """The latest version of every document a placed, paid, confirmed, then cancelled
    reservation leaves behind, with its approval notice sent."""
    reservation = place(store, musical, customer, clock.now())
    _, approval = record_payment(
        store, reservation, PaymentStatus.APPROVED, EventType.PAYMENT_APPROVED, clock.now()
    )
    apply_payment_outcome(approval, reservation_deps(store, clock))
    notice = sent_notice(reservation, NoticeKind.PAYMENT_APPROVED, clock.now())
    cancel_reservation(reservation.id, customer, reservation_deps(store, clock))
    payment, _ = record_payment(
        store, reservation, PaymentStatus.CANCELLED, EventType.PAYMENT_CANCELLED, clock.now()
    )
    return [
        event_doc(store, reservation, "placed"),
        store.read(PAYMENTS.name, reservation.id, f"{reservation.id}.payment-approved"),
        event_doc(store, reservation, "confirmed"),
        notice,
        event_doc(store, reservation, "cancelled"),
        store.read(PAYMENTS.name, reservation.id, f"{reservation.id}.payment-cancelled"),
        reservation_doc(store, reservation),
        payment,
    ]


def fold(documents: list[Document]) -> HistoryItem:
    """Fold documents one at a time, as one-change batches would."""
    item: HistoryItem | None = None
    for document in documents:
        facts = facts_of(document)
        if facts:
            item = HistoryItem.from_facts(facts) if item is None else item.with_facts(facts)
    assert item is not None
    return item


def view_of(store, customer_id: str) -> list[Document]:
    page = store.query(CUSTOMER_CENTER.name, customer_id, limit=1000)
    return [{k: v for k, v in doc.items() if k not in {"_etag", "_ts"}} for doc in page.items]


# --------------------------------------------------------------------------- folding


def test_a_full_journey_shows_every_step_in_time_order_with_final_statuses(
    store, clock, musical, customer
):
    item = fold(approved_then_cancelled(store, clock, musical, customer))

    assert item.reservation_status is ReservationStatus.CANCELLED
    assert item.payment_status is PaymentStatus.CANCELLED
    assert item.musical_title == "Hamilton"
    assert (item.seats, item.amount) == (2, 200)
    assert [step.type for step in item.timeline] == [
        "ReservationPlaced",
        "PaymentApproved",
        "ReservationConfirmed",
        "NoticeSent",
        "ReservationCancelled",
        "PaymentCancelled",
    ]
    assert [notice.kind for notice in item.notices] == ["payment-approved"]
    assert item.updated_at == item.timeline[-1].at


def test_every_order_of_the_same_documents_gives_the_same_item(store, clock, musical, customer):
    documents = approved_then_cancelled(store, clock, musical, customer)[:6]
    expected = fold(documents).to_document()

    for order in itertools.permutations(documents):
        assert fold(list(order)).to_document() == expected


def test_duplicates_and_reordered_redeliveries_change_nothing(store, clock, musical, customer):
    documents = approved_then_cancelled(store, clock, musical, customer)
    expected = fold(documents).to_document()
    shuffled = random.Random(7)

    for _ in range(50):
        deliveries = documents * 3
        shuffled.shuffle(deliveries)
        assert fold(deliveries).to_document() == expected


def test_state_documents_agree_with_the_events_so_intermediate_versions_do_not_matter(
    store, clock, musical, customer
):
    reservation = place(store, musical, customer, clock.now())
    reserved = reservation_doc(store, reservation)
    pending, _ = record_payment(store, reservation, PaymentStatus.PENDING, None, clock.now())
    _, approval = record_payment(
        store, reservation, PaymentStatus.APPROVED, EventType.PAYMENT_APPROVED, clock.now()
    )
    apply_payment_outcome(approval, reservation_deps(store, clock))
    confirmed = reservation_doc(store, reservation)
    events = [
        event_doc(store, reservation, "placed"),
        event_doc(store, reservation, "confirmed"),
        store.read(PAYMENTS.name, reservation.id, f"{reservation.id}.payment-approved"),
    ]
    latest_payment = store.read(PAYMENTS.name, reservation.id, reservation.id)

    seen_every_version = fold([reserved, pending, *events, confirmed, latest_payment])
    seen_latest_only = fold([*events, confirmed, latest_payment])

    assert seen_every_version.to_document() == seen_latest_only.to_document()
    assert seen_every_version.payment_status is PaymentStatus.APPROVED


def test_a_cancel_after_the_approval_shows_the_payment_cancelled_whatever_arrives_last(
    store, clock, musical, customer
):
    documents = approved_then_cancelled(store, clock, musical, customer)
    approval, cancellation = documents[1], documents[5]

    assert fold([cancellation, approval]).payment_status is PaymentStatus.CANCELLED
    assert fold([approval, cancellation]).payment_status is PaymentStatus.CANCELLED


def test_a_late_deferral_never_hides_an_approval(store, clock, musical, customer):
    reservation = place(store, musical, customer, clock.now())
    _, deferral = record_payment(
        store, reservation, PaymentStatus.DEFERRED, EventType.PAYMENT_DEFERRED, clock.now()
    )
    _, approval = record_payment(
        store, reservation, PaymentStatus.APPROVED, EventType.PAYMENT_APPROVED, clock.now()
    )
    deferred_doc = deferral.to_document("reservationId", reservation.id)
    approved_doc = approval.to_document("reservationId", reservation.id)

    item = fold([approved_doc, deferred_doc])

    assert item.payment_status is PaymentStatus.APPROVED
    assert [s.type for s in item.timeline] == ["PaymentDeferred", "PaymentApproved"]


def test_a_payment_seen_before_its_placement_lands_and_is_completed_later(
    store, clock, musical, customer
):
    reservation = place(store, musical, customer, clock.now())
    _, approval = record_payment(
        store, reservation, PaymentStatus.APPROVED, EventType.PAYMENT_APPROVED, clock.now()
    )

    project([approval.to_document("reservationId", reservation.id)], store)
    early = HistoryItem.from_document(
        store.read(CUSTOMER_CENTER.name, customer.customer_id, reservation.id)
    )
    project([event_doc(store, reservation, "placed")], store)
    complete = HistoryItem.from_document(
        store.read(CUSTOMER_CENTER.name, customer.customer_id, reservation.id)
    )

    assert early.payment_status is PaymentStatus.APPROVED
    assert (early.musical_title, early.seats, early.amount) == (None, None, 200)
    assert not early.is_placed
    assert complete.is_placed
    assert complete.created_at == reservation.created_at
    assert complete.reservation_status is ReservationStatus.RESERVED
    assert complete.payment_status is PaymentStatus.APPROVED


def test_only_sent_notices_count(store, clock, musical, customer):
    reservation = place(store, musical, customer, clock.now())
    sent = sent_notice(reservation, NoticeKind.PAYMENT_APPROVED, clock.now())
    pending = {**sent, "status": "Pending", "sentAt": None}

    assert facts_of(pending) == []
    item = fold([event_doc(store, reservation, "placed"), sent])
    assert [(n.kind, n.message) for n in item.notices] == [
        ("payment-approved", f"payment-approved for {reservation.id}")
    ]
    assert item.timeline[-1].type == "NoticeSent"
    assert item.timeline[-1].kind == "payment-approved"


def test_documents_the_view_does_not_use_state_nothing(store, clock, musical, customer):
    reservation = place(store, musical, customer, clock.now())
    placed = event_doc(store, reservation, "placed")
    musical_doc = store.read(MUSICALS.name, musical.id, musical.id)
    catalog = store.query(MUSICALS.name, "catalog", where=[Condition("type", "=", "catalogEntry")])

    assert facts_of(musical_doc) == []
    assert facts_of(catalog.items[0]) == []
    assert facts_of({**placed, "eventType": "SeatsRecounted"}) == []
    assert facts_of({**placed, "payload": {"reservationId": reservation.id}}) == []


# --------------------------------------------------------------------------- writing batches


def test_a_batch_costs_one_write_per_reservation_and_a_redelivery_writes_nothing(
    store, clock, musical, customer
):
    documents = approved_then_cancelled(store, clock, musical, customer)

    assert project(documents, store) == 1
    stored = store.read(
        CUSTOMER_CENTER.name, customer.customer_id, documents[0]["payload"]["reservationId"]
    )
    assert project(documents, store) == 0
    again = store.read(CUSTOMER_CENTER.name, customer.customer_id, stored["id"])
    assert again["_etag"] == stored["_etag"]


def test_feeds_projected_concurrently_converge_on_the_same_item(store, clock, musical, customer):
    documents = approved_then_cancelled(store, clock, musical, customer)
    expected = fold(documents).to_document()
    singles = [[document] for document in documents * 4]
    random.Random(3).shuffle(singles)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda batch: project(batch, store), singles))

    assert view_of(store, customer.customer_id) == [expected]


# --------------------------------------------------------------------------- rebuild


def live_scenario(store, clock, musical) -> list[str]:
    """Three customers, five reservations in assorted states, projected as the triggers
    would: after each step, every feed's new changes in small batches, feeds interleaved."""
    positions = {feed.container: 0 for feed in HISTORY_FEEDS}

    def tick() -> None:
        for feed in reversed(HISTORY_FEEDS):
            while changes := store.read_changes(feed.container, positions[feed.container], 2):
                project([change.document for change in changes], store)
                positions[feed.container] = changes[-1].lsn

    customers = [Caller(customer_id=name) for name in ("alice", "bob", "carol")]
    for index, customer in enumerate([*customers, customers[0], customers[1]]):
        reservation = place(store, musical, customer, clock.now())
        tick()
        status, event_type = (
            (PaymentStatus.DECLINED, EventType.PAYMENT_DECLINED)
            if index == 2
            else (PaymentStatus.APPROVED, EventType.PAYMENT_APPROVED)
        )
        _, outcome = record_payment(store, reservation, status, event_type, clock.now())
        tick()
        apply_payment_outcome(outcome, reservation_deps(store, clock))
        kind = NoticeKind.PAYMENT_DECLINED if index == 2 else NoticeKind.PAYMENT_APPROVED
        store.upsert(NOTICES.name, sent_notice(reservation, kind, clock.now()))
        tick()
        if index == 3:
            cancel_reservation(reservation.id, customer, reservation_deps(store, clock))
            record_payment(
                store,
                reservation,
                PaymentStatus.CANCELLED,
                EventType.PAYMENT_CANCELLED,
                clock.now(),
            )
            tick()
    return [customer.customer_id for customer in customers]


def test_rebuilding_from_scratch_gives_exactly_the_live_view(store, clock, musical):
    customer_ids = live_scenario(store, clock, musical)
    live = {customer_id: view_of(store, customer_id) for customer_id in customer_ids}
    stale = {**live["bob"][0], "id": "gone", "reservationId": "gone"}
    store.create(CUSTOMER_CENTER.name, stale)

    report = rebuild_history(store)

    assert {customer_id: view_of(store, customer_id) for customer_id in customer_ids} == live
    assert report.deleted == 6
    assert report.replayed == {
        feed.container: len(store.read_changes(feed.container, 0, 1000)) for feed in HISTORY_FEEDS
    }
    assert sum(len(items) for items in live.values()) == 5


def test_a_rebuild_checkpoints_every_feed_at_its_end(store, clock, musical):
    live_scenario(store, clock, musical)
    for feed in HISTORY_FEEDS:
        store.set_checkpoint(feed.container, feed.lease_prefix, 1)

    rebuild_history(store)

    for feed in HISTORY_FEEDS:
        changes = store.read_changes(feed.container, 0, 1000)
        last = changes[-1].lsn if changes else 0  # a feed with nothing in it starts over
        assert store.get_checkpoint(feed.container, feed.lease_prefix) == last


@pytest.mark.parametrize("container", [feed.container for feed in HISTORY_FEEDS])
def test_each_feed_has_its_own_checkpoint(container):
    prefixes = [feed.lease_prefix for feed in HISTORY_FEEDS if feed.container == container]

    assert len(prefixes) == 1
    assert prefixes[0].startswith("history-")


def test_a_step_known_from_two_sources_keeps_its_earliest_time(store, clock, musical, customer):
    reservation = place(store, musical, customer, clock.now())
    cancel_reservation(reservation.id, customer, reservation_deps(store, clock))
    event = event_doc(store, reservation, "cancelled")
    touched_later = {**reservation_doc(store, reservation), "updatedAt": clock.now().isoformat()}

    for order in ([event, touched_later], [touched_later, event]):
        cancelled = [s for s in fold(order).timeline if s.type == "ReservationCancelled"]
        assert [s.at for s in cancelled] == [datetime.fromisoformat(event["occurredAt"])]


def test_a_refund_under_way_shows_refunding_until_the_payment_is_cancelled(
    store, clock, musical, customer
):
    reservation = place(store, musical, customer, clock.now())
    record_payment(
        store, reservation, PaymentStatus.APPROVED, EventType.PAYMENT_APPROVED, clock.now()
    )
    refunding, _ = record_payment(store, reservation, PaymentStatus.REFUNDING, None, clock.now())
    cancelled, _ = record_payment(
        store, reservation, PaymentStatus.CANCELLED, EventType.PAYMENT_CANCELLED, clock.now()
    )
    approval_doc = store.read(PAYMENTS.name, reservation.id, f"{reservation.id}.payment-approved")
    cancellation_doc = store.read(
        PAYMENTS.name, reservation.id, f"{reservation.id}.payment-cancelled"
    )

    assert fold([approval_doc, refunding]).payment_status is PaymentStatus.REFUNDING
    assert fold([refunding, approval_doc]).payment_status is PaymentStatus.REFUNDING
    assert fold([refunding, cancellation_doc]).payment_status is PaymentStatus.CANCELLED
    assert fold([cancelled, refunding]).payment_status is PaymentStatus.CANCELLED
