"""The cost model counts the operations a saga really performs, and prices them as written."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from bench.cost_model import load_sheet, saga_cost
from devhost.embedded.sqlite_bus import SqliteMessageBus
from devhost.embedded.sqlite_store import SqliteDocumentStore
from shared.adapters.counting import CountingBus, CountingDocumentStore, OperationCounts
from shared.ports import Create, NotFound, OutboundMessage, Patch, Read, Set
from shared.topology import MUSICALS, SUB_PAYMENT, TOPIC_RESERVATION
from tests.support.devhost_process import PROJECT_ROOT


def test_the_counting_store_tallies_each_operation_and_its_size(tmp_path):
    counts = OperationCounts()
    store = CountingDocumentStore(SqliteDocumentStore(tmp_path), counts)
    try:
        store.create(MUSICALS.name, {"id": "m1", "musicalId": "m1", "blob": "x" * 1500})
        store.read(MUSICALS.name, "m1", "m1")
        store.batch(
            MUSICALS.name,
            "m1",
            [
                Create({"id": "r1", "musicalId": "m1"}),
                Patch("m1", [Set("seen", True)]),
                Read("m1"),
            ],
        )
        store.query(MUSICALS.name, "m1")
    finally:
        store.inner.close()

    tally = counts.snapshot()
    assert tally["cosmos.write.create"] == 2
    assert tally["cosmos.write.patch"] == 1
    assert tally["cosmos.read"] == 2
    assert tally["cosmos.batch"] == 1
    assert tally["cosmos.batch.operations"] == 3
    assert tally["cosmos.write.size.2kb"] == 2  # the musical, created and then patched
    assert tally["cosmos.write.size.1kb"] == 1
    assert tally["cosmos.query"] == 1
    assert tally["cosmos.query.items"] == 2


def test_the_counting_store_tallies_the_async_reads_as_their_sync_twins(tmp_path):
    """A read_many of n keys is n point reads (a key that finds nothing is charged too); each
    query page, of items or of JSON texts, is one query."""
    counts = OperationCounts()
    store = CountingDocumentStore(SqliteDocumentStore(tmp_path), counts)
    keys = [("m1", "m1"), ("m1", "missing"), ("m2", "m2")]

    async def read_all() -> None:
        await store.read_many_async(MUSICALS.name, keys)
        await store.read_many_json_async(MUSICALS.name, keys, ["title"])
        await store.query_async(MUSICALS.name, "m1")
        await store.query_json_async(MUSICALS.name, "m2", ["title"])
        with pytest.raises(NotFound):
            await store.read_async(MUSICALS.name, "m1", "missing")

    try:
        store.create(MUSICALS.name, {"id": "m1", "musicalId": "m1", "blob": "x" * 1500})
        store.create(MUSICALS.name, {"id": "m2", "musicalId": "m2", "title": "Cats"})
        before = counts.snapshot()
        asyncio.run(read_all())
    finally:
        store.inner.close()

    tally = {key: value - before.get(key, 0) for key, value in counts.snapshot().items()}
    assert tally["cosmos.read"] == 3 + 3 + 1
    assert tally["cosmos.read.missing"] == 1 + 1 + 1
    # The whole m1 is 2 KB; its JSON text holds only its (absent) title: 1 KB, as is m2.
    assert tally["cosmos.read.kb"] == (2 + 1 + 1) + (1 + 1 + 1) + 1
    assert tally["cosmos.query"] == 2
    assert tally["cosmos.query.items"] == 2
    assert tally["cosmos.query.kb"] == 2 + 1


def test_the_counting_bus_tallies_sends_receipts_and_settlements(tmp_path):
    counts = OperationCounts()
    bus = CountingBus(SqliteMessageBus(tmp_path), counts)
    try:
        bus.publish(TOPIC_RESERVATION, [OutboundMessage(b"{}", "m1", "s")])
        (message,) = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT)
        bus.complete(message)
    finally:
        bus.inner.close()

    assert counts.snapshot() == {
        "bus.publish": 1,
        "bus.sent": 1,
        "bus.scheduled": 0,
        "bus.received": 1,
        "bus.completed": 1,
    }


SAGAS = 2
# What is paid per second rather than per saga, pinned so that a saga's counts are exact: the
# breaker's state is read once per run instead of once per second. (The bench itself keeps the
# sweeper's runs out: they are not a saga's cost, docs/cost.md.)
PINNED = {"BREAKER_CACHE_SECONDS": "3600"}


@pytest.mark.e2e
def test_a_completed_saga_is_counted_as_the_operations_it_performs():
    """Each count below is the operations of the code path of one approved general-admission
    saga (placed, charged, confirmed, noticed, projected into the history), listed."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.cloud_cost", "--sagas", str(SAGAS), "--json"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **PINNED},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    per_saga = json.loads(result.stdout[result.stdout.index("{\n") :])["perSaga"]

    def count(key: str) -> float:
        return per_saga.get(key, 0)

    # Functions: one per hop, and no other (no sweep).
    for function in (
        "create_reservation",
        "charge_reservation",
        "settle_reservation",
        "notify_customer",
    ):
        assert count(f"function.{function}") == 1
    # Change-feed executions: one per batch of changes the trigger reads. The musicals feed's
    # two writes (placement, confirmation) are a whole saga apart: 2. The payment's creation
    # and its approval are written a gateway call apart, the notice's creation and its sending
    # a log line apart: the trigger reads them apart (2, as seen) or, if it wakes late,
    # together (1).
    assert count("function.relay_reservation_events") == 2
    assert count("function.history_from_musicals") == 2
    payment_feed = count("function.history_from_payments")
    assert 1 <= payment_feed <= 2
    assert 1 <= count("function.relay_payment_events") <= 2
    assert 1 <= count("function.history_from_notices") <= 2
    assert not [key for key, value in per_saga.items() if value and "sweep" in key]

    # Service Bus: two events relayed (ReservationPlaced, PaymentApproved); three deliveries
    # of them (the payment subscription, the notice and the reservation subscriptions of the
    # payment topic).
    assert count("bus.sent") == 2
    assert count("bus.received") == 3
    assert count("bus.completed") == 3

    # Batches: placement (the musical's seats patched, the reservation, ReservationPlaced),
    # payment created (the payment), payment approved (the payment replaced, PaymentApproved),
    # settlement (the reservation replaced, ReservationConfirmed).
    assert count("cosmos.batch") == 4
    assert count("cosmos.batch.operations") == 3 + 1 + 2 + 2
    # Creates: 5 in those batches, the notice, the history item (by its first fold).
    assert count("cosmos.write.create") == 5 + 1 + 1
    # Replaces: 2 in the batches, the notice marked sent, and the history item by each later
    # fold: each payments-feed execution (the payment Pending, then Approved), the
    # confirmation, the sent notice (a notice still Pending is no fact for the history).
    assert count("cosmos.write.replace") == 2 + 1 + payment_feed + 2
    assert count("cosmos.write.patch") == 1  # the musical's seats, in the placement batch
    assert count("cosmos.write.upsert") == count("cosmos.write.delete") == 0
    assert count("cosmos.query") == 0  # every read of this saga names its item
    # Point reads that find their item: the history item before each later fold, the
    # reservation (settlement), the payment (the notice: cancelled since?); and once per run,
    # the musical (MusicalDirectory keeps its facts for the process).
    found = payment_feed + 2 + 1 + 1 + 1 / SAGAS
    # That find nothing (charged too): the history item before its first fold; and once per
    # run, the breaker's state (no document: it never tripped).
    missing = 1 + 1 / SAGAS
    # Variable: three feeds fold into one history item concurrently (shared/projection/
    # apply.py), and a fold that lost the race reads the item again: seen 0 to 1 per saga,
    # up to 2 allowed.
    assert count("cosmos.read") - count("cosmos.read.missing") >= found
    assert count("cosmos.read.missing") >= missing
    assert found + missing <= count("cosmos.read") <= found + missing + 2


def test_the_price_sheet_turns_counts_into_request_units_and_money():
    sheet = load_sheet()
    counts = {
        "cosmos.read.kb": 2,
        "cosmos.write.kb": 4,
        "cosmos.query": 1,
        "cosmos.query.kb": 1,
        "bus.sent": 2,
        "bus.received": 3,
        "bus.completed": 3,
        "function.create_reservation": 1,
        "function.create_reservation.seconds": 0.5,
        "function.relay_payment_events": 1,
        "function.relay_payment_events.seconds": 0.5,
    }
    cosmos = sheet["cosmos"]

    cost = saga_cost(counts, sheet)

    expected_ru = (
        2 * cosmos["ru_point_read_per_kb"]
        + 4 * cosmos["ru_write_per_kb"]
        + cosmos["ru_query_page"]
        + cosmos["ru_query_per_kb_returned"]
        + cosmos["ru_change_feed_read"]
        + cosmos["ru_lease_checkpoint"]
    )
    assert cost.request_units == pytest.approx(expected_ru)
    assert cost.bus_operations == 8
    assert cost.executions == 2
    assert cost.gb_seconds == pytest.approx(1.0 * sheet["functions"]["instance_memory_gb"])
    assert cost.usd_cosmos_serverless == pytest.approx(
        expected_ru * cosmos["serverless_usd_per_million_ru"] / 1e6
    )
