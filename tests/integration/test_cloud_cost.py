"""The cost model counts the operations a saga really performs, and prices them as written."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.cost_model import load_sheet, saga_cost
from devhost.embedded.sqlite_bus import SqliteMessageBus
from devhost.embedded.sqlite_store import SqliteDocumentStore
from shared.adapters.counting import CountingBus, CountingDocumentStore, OperationCounts
from shared.ports import Create, OutboundMessage, Patch, Read, Set
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


@pytest.mark.e2e
def test_a_completed_saga_is_counted_as_the_operations_it_performs():
    result = subprocess.run(
        [sys.executable, "-m", "bench.cloud_cost", "--sagas", "2", "--json"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    per_saga = json.loads(result.stdout[result.stdout.index("{\n") :])["perSaga"]

    # Two events relayed (ReservationPlaced, PaymentApproved); three deliveries of them (the
    # payment subscription, and the notice and reservation subscriptions of the payment topic).
    assert per_saga["bus.sent"] == 2
    assert per_saga["bus.received"] == 3
    assert per_saga["bus.completed"] == 3
    for function in ("create_reservation", "charge_reservation", "settle_reservation"):
        assert per_saga[f"function.{function}"] == 1
    assert per_saga["function.notify_customer"] == 1
    # The request's batch holds its seats, the reservation, its event and its idempotency.
    assert per_saga["cosmos.batch"] >= 1
    assert per_saga["cosmos.write.create"] >= 2


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
