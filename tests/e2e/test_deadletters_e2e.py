"""Dead letters end to end: poison is dead-lettered with its reason, never retried for ever nor
lost, and `python -m devhost deadletters` lists, shows, replays and purges while the host runs.

The tests reach the embedded bus of the host's data dir for one thing only: to put a message
on it (poison cannot be sent through the HTTP API) or to play a failing consumer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devhost.embedded.sqlite_bus import SqliteMessageBus
from shared.ports import OutboundMessage
from shared.topology import SUB_PAYMENT, TOPIC_RESERVATION, TOPICS
from tests.e2e.conftest import Api, make_api
from tests.e2e.test_resilience_e2e import SHORT_SETTINGS, all_deferred_in_history
from tests.support.devhost_process import PROJECT_ROOT, DevHost
from tests.support.eventually import eventually
from tests.support.fake_gateway import FakeGateway

pytestmark = pytest.mark.e2e

MAX_DELIVERIES = next(
    s.max_delivery_count for s in TOPICS[TOPIC_RESERVATION].subscriptions if s.name == SUB_PAYMENT
)
WHERE = ["--topic", TOPIC_RESERVATION, "--subscription", SUB_PAYMENT]


def deadletters(data_dir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devhost", "deadletters", *arguments, "--data-dir", str(data_dir)],
        cwd=PROJECT_ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )


def listed(data_dir: Path, *filters: str) -> list[dict]:
    result = deadletters(data_dir, "list", "--json", *filters)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def log_entries(host: DevHost) -> list[dict]:
    """The host's JSON log lines (its other output, if any, is skipped)."""
    entries = []
    for line in host.logs().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


@pytest.fixture
def host(tmp_path: Path) -> Iterator[DevHost]:
    with FakeGateway() as gateway:
        running = DevHost(
            tmp_path / "data", {"PAYMENT_GATEWAY_URL": gateway.url, **SHORT_SETTINGS}
        ).start()
        yield running
        running.close()


@pytest.fixture
def bus(host: DevHost) -> Iterator[SqliteMessageBus]:
    opened = SqliteMessageBus(host.data_dir)
    yield opened
    opened.close()


def test_a_poison_message_is_dead_lettered_after_its_deliveries_and_the_log_says_why(
    host: DevHost, bus: SqliteMessageBus
) -> None:
    bus.publish(
        TOPIC_RESERVATION,
        [OutboundMessage(body=b"<html>not an event</html>", message_id="poison-1", subject="?")],
    )

    (letter,) = eventually(lambda: listed(host.data_dir), what="the poison dead-lettered")

    assert letter["messageId"] == "poison-1"
    assert (letter["topic"], letter["subscription"]) == (TOPIC_RESERVATION, SUB_PAYMENT)
    assert letter["deadLetterReason"] == "MaxDeliveryCountExceeded"
    assert letter["deliveryCount"] == MAX_DELIVERIES
    failures = [
        entry["message"]
        for entry in log_entries(host)
        if "poison-1" in entry.get("message", "") and "failed" in entry["message"]
    ]
    assert len(failures) == MAX_DELIVERIES
    assert all("PoisonMessage" in message and "is not JSON" in message for message in failures)
    time.sleep(1.0)
    assert len(listed(host.data_dir)) == 1  # dead-lettered once, and left alone


def test_show_prints_the_whole_dead_letter_and_the_table_lists_it(
    host: DevHost, bus: SqliteMessageBus
) -> None:
    bus.publish(
        TOPIC_RESERVATION,
        [
            OutboundMessage(
                body=b'{"not": "an event"}',
                message_id="poison-2",
                subject="Mystery",
                correlation_id="corr-42",
                application_properties={"source": "test"},
            )
        ],
    )
    (letter,) = eventually(lambda: listed(host.data_dir, *WHERE))

    shown = deadletters(host.data_dir, "show", str(letter["sequenceNumber"]), *WHERE)
    table = deadletters(host.data_dir, "list")

    assert shown.returncode == 0, shown.stderr
    details = json.loads(shown.stdout)
    assert details["body"] == {"not": "an event"}
    assert details["correlationId"] == "corr-42"
    assert details["applicationProperties"] == {"source": "test"}
    assert details["subject"] == "Mystery"
    assert "poison-2" in table.stdout
    assert "MaxDeliveryCountExceeded" in table.stdout
    missing = deadletters(host.data_dir, "show", "999999", *WHERE)
    assert missing.returncode == 1
    assert "no dead letter 999999" in missing.stderr


def test_replayed_poison_is_tried_again_then_dead_lettered_again_and_purge_removes_it(
    host: DevHost, bus: SqliteMessageBus
) -> None:
    bus.publish(
        TOPIC_RESERVATION, [OutboundMessage(body=b"\xff\xfe", message_id="poison-3", subject="?")]
    )
    (first,) = eventually(lambda: listed(host.data_dir))

    replay = deadletters(host.data_dir, "replay", str(first["sequenceNumber"]), *WHERE)

    assert replay.returncode == 0, replay.stderr
    (second,) = eventually(
        lambda: [
            m for m in listed(host.data_dir) if m["sequenceNumber"] != first["sequenceNumber"]
        ],
        what="the replayed poison dead-lettered again",
    )
    assert second["messageId"] == "poison-3"
    assert second["deliveryCount"] == MAX_DELIVERIES
    assert len(listed(host.data_dir)) == 1

    purge = deadletters(host.data_dir, "purge", "--all", *WHERE)

    assert purge.returncode == 0, purge.stderr
    assert listed(host.data_dir) == []
    assert deadletters(host.data_dir, "list").stdout.strip() == "no dead letters"


def test_a_dead_lettered_payment_retry_stalls_its_payment_until_replayed_then_it_completes(
    tmp_path: Path,
) -> None:
    with FakeGateway() as gateway:
        env = {"PAYMENT_GATEWAY_URL": gateway.url, **SHORT_SETTINGS}
        host = DevHost(tmp_path / "data", env).start()
        api: Api = make_api(host)
        musical = api.musical(seats=5)
        gateway.set_mode("down")
        reservation = api.reserve(musical["id"], seats=1).json()
        eventually(lambda: all_deferred_in_history(api, [reservation["id"]]))
        host.stop()
        fail_every_delivery_of_the_pending_retry(host.data_dir)
        gateway.set_mode("up")

        restarted = DevHost(host.data_dir, env).start()
        try:
            again = make_api(restarted)
            (letter,) = listed(restarted.data_dir, *WHERE)
            assert letter["subject"] == "PaymentRetry"
            # Nothing else drives a deferred payment: past any retry delay it is still waiting.
            time.sleep(float(SHORT_SETTINGS["PAYMENT_RETRY_MAX_SECONDS"]) + 1)
            assert again.status_of(reservation["id"]) == "Reserved"

            replay = deadletters(restarted.data_dir, "replay", "--all", *WHERE)

            assert replay.returncode == 0, replay.stderr
            eventually(lambda: again.status_of(reservation["id"]) == "Confirmed", timeout=15)
            assert gateway.charges_per_order() == {reservation["id"]: 1}
            assert listed(restarted.data_dir) == []
        finally:
            restarted.close()


def fail_every_delivery_of_the_pending_retry(data_dir: Path) -> None:
    """Play a payment function that fails on every delivery of the scheduled retry (as it would
    with the store down for a while), until the bus dead-letters it."""
    bus = SqliteMessageBus(data_dir)
    try:
        deadline = time.monotonic() + 15
        while not bus.dead_letters(TOPIC_RESERVATION, SUB_PAYMENT):
            assert time.monotonic() < deadline, "the retry never came due"
            for message in bus.receive(TOPIC_RESERVATION, SUB_PAYMENT, max_messages=10):
                assert message.subject == "PaymentRetry", message
                assert message.enqueued_time <= datetime.now(UTC)
                bus.abandon(message)
            bus.wait_for_messages(TOPIC_RESERVATION, SUB_PAYMENT, timeout=0.5)
    finally:
        bus.close()
