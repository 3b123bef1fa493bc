"""wait_for_messages on the embedded bus, on the real clock: what wakes a waiter, and when.

Bounds are generous (seconds where the bus needs milliseconds): they tell "woke up" from "slept
until the timeout", not how fast the bus is. Except where another process publishes, the
cross-process re-check is pushed out of reach, so what wakes a waiter can only be the thing
under test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devhost.embedded import sqlite_bus
from devhost.embedded.bus_rings import encode_ring
from devhost.embedded.sqlite_bus import SqliteMessageBus
from shared.ports import OutboundMessage
from shared.topology import SubscriptionSpec, TopicSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
TOPIC = "orders"
ALL = "all"
FILTERED = "filtered"
TOPICS = {
    TOPIC: TopicSpec(
        TOPIC,
        (
            SubscriptionSpec(ALL, lock_duration_seconds=1),
            SubscriptionSpec(FILTERED, subjects=("Wanted",)),
        ),
    )
}
LONG_TIMEOUT = 30.0
WOKE_WITHIN = 5.0


@pytest.fixture(autouse=True)
def no_cross_process_recheck(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "another_process" not in request.node.name:
        monkeypatch.setattr(sqlite_bus, "CROSS_PROCESS_POLL_SECONDS", LONG_TIMEOUT)


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[SqliteMessageBus]:
    opened = SqliteMessageBus(tmp_path, TOPICS)
    yield opened
    opened.close()


def message(subject: str = "Wanted", **fields: object) -> OutboundMessage:
    return OutboundMessage(body=b"{}", message_id=str(uuid.uuid4()), subject=subject, **fields)  # type: ignore[arg-type]


def timed_wait(bus: SqliteMessageBus, subscription: str = ALL) -> tuple[bool, float]:
    started = time.monotonic()
    found = bus.wait_for_messages(TOPIC, subscription, timeout=LONG_TIMEOUT)
    return found, time.monotonic() - started


def test_waiting_returns_at_once_when_a_message_is_already_deliverable(
    bus: SqliteMessageBus,
) -> None:
    bus.publish(TOPIC, [message()])

    found, waited = timed_wait(bus)

    assert found
    assert waited < WOKE_WITHIN


def test_waiting_on_an_empty_subscription_returns_false_after_the_timeout(
    bus: SqliteMessageBus,
) -> None:
    started = time.monotonic()

    found = bus.wait_for_messages(TOPIC, ALL, timeout=0.3)

    assert not found
    assert time.monotonic() - started >= 0.3


def test_a_publish_from_another_thread_wakes_the_waiter(bus: SqliteMessageBus) -> None:
    publisher = threading.Timer(0.2, bus.publish, args=(TOPIC, [message()]))
    publisher.start()

    found, waited = timed_wait(bus)

    publisher.join()
    assert found
    assert waited < WOKE_WITHIN
    assert len(bus.receive(TOPIC, ALL)) == 1


def test_an_abandon_from_another_thread_wakes_the_waiter(bus: SqliteMessageBus) -> None:
    bus.publish(TOPIC, [message()])
    (held,) = bus.receive(TOPIC, ALL)
    abandoner = threading.Timer(0.2, bus.abandon, args=(held,))
    abandoner.start()

    found, waited = timed_wait(bus)

    abandoner.join()
    assert found
    assert waited < WOKE_WITHIN
    (again,) = bus.receive(TOPIC, ALL)
    assert again.delivery_count == 2


def test_a_message_the_subscription_filters_out_does_not_end_the_wait(
    bus: SqliteMessageBus,
) -> None:
    bus.publish(TOPIC, [message(subject="Unwanted")])

    assert not bus.wait_for_messages(TOPIC, FILTERED, timeout=0.3)
    assert bus.wait_for_messages(TOPIC, ALL, timeout=0.3)


def test_a_scheduled_message_wakes_the_waiter_when_it_comes_due(bus: SqliteMessageBus) -> None:
    due = datetime.now(UTC) + timedelta(seconds=0.6)
    bus.publish(TOPIC, [message(scheduled_enqueue_time=due)])

    found, waited = timed_wait(bus)

    assert found
    assert datetime.now(UTC) >= due
    assert waited < WOKE_WITHIN
    assert len(bus.receive(TOPIC, ALL)) == 1


def test_an_expiring_lock_wakes_the_waiter_for_the_redelivery(bus: SqliteMessageBus) -> None:
    bus.publish(TOPIC, [message()])
    (first,) = bus.receive(TOPIC, ALL)

    found, waited = timed_wait(bus)

    assert found
    assert datetime.now(UTC) >= first.locked_until
    assert waited < WOKE_WITHIN
    (again,) = bus.receive(TOPIC, ALL)
    assert again.delivery_count == 2


def test_a_publish_from_another_process_wakes_the_waiter(
    bus: SqliteMessageBus, tmp_path: Path
) -> None:
    script = textwrap.dedent(
        f"""
        import time, uuid
        from pathlib import Path
        from devhost.embedded.sqlite_bus import SqliteMessageBus
        from shared.ports import OutboundMessage
        from shared.topology import SubscriptionSpec, TopicSpec

        topics = {{"{TOPIC}": TopicSpec("{TOPIC}", (SubscriptionSpec("{ALL}"),))}}
        bus = SqliteMessageBus(Path({str(tmp_path)!r}), topics)
        time.sleep(0.3)
        bus.publish("{TOPIC}", [OutboundMessage(b"from afar", str(uuid.uuid4()), "Wanted")])
        bus.close()
        """
    )
    publisher = subprocess.Popen(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    )
    try:
        found, waited = timed_wait(bus)
    finally:
        assert publisher.wait(timeout=LONG_TIMEOUT) == 0

    assert found
    assert waited < WOKE_WITHIN
    (received,) = bus.receive(TOPIC, ALL)
    assert received.body == b"from afar"


def test_waiting_does_not_spin_the_cpu(bus: SqliteMessageBus) -> None:
    cpu_before = time.process_time()

    bus.wait_for_messages(TOPIC, ALL, timeout=1.5)

    assert time.process_time() - cpu_before < 0.3


def test_closing_the_bus_releases_a_waiter(bus: SqliteMessageBus) -> None:
    closer = threading.Timer(0.2, bus.close)
    closer.start()

    found, waited = timed_wait(bus)

    closer.join()
    assert not found
    assert waited < WOKE_WITHIN


# ------------------------------------------------------------------ rings between processes
# A bus opened with a `rings` path stands for a process of its own: it has its own doorbells,
# so only a ring through the socket can wake a waiter of another bus (the re-check is out of
# reach, see above).


@pytest.fixture
def rings() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="op-") as directory:  # socket paths must be short
        yield Path(directory) / "rings.sock"


def test_a_publish_of_a_second_bus_rings_the_listening_one(tmp_path: Path, rings: Path) -> None:
    listening = SqliteMessageBus(tmp_path, TOPICS, rings=rings)
    listening.listen_for_rings()
    publishing = SqliteMessageBus(tmp_path, TOPICS, rings=rings)
    publisher = threading.Timer(0.2, publishing.publish, args=(TOPIC, [message()]))
    publisher.start()

    found, waited = timed_wait(listening)

    publisher.join()
    publishing.close()
    assert found
    assert waited < WOKE_WITHIN
    assert len(listening.receive(TOPIC, ALL)) == 1
    listening.close()
    assert not rings.exists()  # the listener takes its socket away


def test_a_bus_that_does_not_listen_hears_no_rings(tmp_path: Path, rings: Path) -> None:
    deaf = SqliteMessageBus(tmp_path, TOPICS, rings=rings)
    publishing = SqliteMessageBus(tmp_path, TOPICS, rings=rings)
    # Published well after the wait began (a waiter that starts late finds the message at once).
    publisher = threading.Timer(0.5, publishing.publish, args=(TOPIC, [message()]))
    publisher.start()

    started = time.monotonic()
    deaf.wait_for_messages(TOPIC, ALL, timeout=2.0)
    waited = time.monotonic() - started

    publisher.join()  # no listener: its ring is dropped, and the publish succeeds
    publishing.close()
    deaf.close()
    assert waited >= 1.9  # slept through the publish until its timeout


def test_a_malformed_ring_is_ignored_and_listening_goes_on(tmp_path: Path, rings: Path) -> None:
    listening = SqliteMessageBus(tmp_path, TOPICS, rings=rings)
    listening.listen_for_rings()
    publishing = SqliteMessageBus(tmp_path, TOPICS, rings=rings)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as stranger:
        stranger.sendto(b"\xff not a ring", str(rings))
        stranger.sendto(encode_ring("no-such-topic", ALL, 1), str(rings))
    publisher = threading.Timer(0.2, publishing.publish, args=(TOPIC, [message()]))
    publisher.start()

    found, waited = timed_wait(listening)

    publisher.join()
    publishing.close()
    listening.close()
    assert found
    assert waited < WOKE_WITHIN
