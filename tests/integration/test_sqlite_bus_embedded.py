"""What only the embedded bus promises: its file, its backlog count, its input checks, and
sharing one bus between processes."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devhost.embedded.sqlite_bus import SqliteMessageBus
from shared.ports import LockLost, OutboundMessage
from shared.topology import (
    SUB_NOTICE,
    SUB_PAYMENT,
    TOPIC_PAYMENT,
    TOPIC_RESERVATION,
    TOPICS,
)
from tests.contract.bus_backends import ManualClock

REPO_ROOT = Path(__file__).resolve().parents[2]
WINDOW = TOPICS[TOPIC_RESERVATION].duplicate_detection_window_seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def bus(tmp_path: Path, clock: ManualClock) -> Iterator[SqliteMessageBus]:
    opened = SqliteMessageBus(tmp_path, clock=clock)
    yield opened
    opened.close()


def message(subject: str = "ReservationPlaced", **fields: object) -> OutboundMessage:
    fields.setdefault("message_id", str(uuid.uuid4()))
    return OutboundMessage(body=b"{}", subject=subject, **fields)  # type: ignore[arg-type]


def test_the_bus_lives_in_bus_db_inside_a_data_dir_it_creates(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"

    SqliteMessageBus(data_dir).close()

    assert (data_dir / "bus.db").is_file()


def test_active_count_counts_deliverable_and_locked_messages_only(
    bus: SqliteMessageBus, clock: ManualClock
) -> None:
    bus.publish(TOPIC_RESERVATION, [message() for _ in range(4)])
    bus.publish(TOPIC_RESERVATION, [message(scheduled_enqueue_time=clock() + timedelta(hours=1))])
    first, second = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT, max_messages=2)
    bus.complete(first)
    bus.dead_letter(second, "Poison")
    bus.receive(TOPIC_RESERVATION, SUB_PAYMENT)

    assert bus.active_count(TOPIC_RESERVATION, SUB_PAYMENT) == 2
    clock.advance(3_600)
    assert bus.active_count(TOPIC_RESERVATION, SUB_PAYMENT) == 3
    assert bus.active_count(TOPIC_PAYMENT, SUB_NOTICE) == 0


def test_publishing_to_an_unknown_topic_raises_value_error(bus: SqliteMessageBus) -> None:
    with pytest.raises(ValueError, match="unknown topic"):
        bus.publish("no-such-topic", [message()])


def test_receiving_from_an_unknown_subscription_raises_value_error(
    bus: SqliteMessageBus,
) -> None:
    with pytest.raises(ValueError, match="no subscription"):
        bus.receive(TOPIC_RESERVATION, "no-such-subscription")


def test_a_scheduled_time_without_timezone_is_refused(bus: SqliteMessageBus) -> None:
    naive = datetime(2026, 1, 1, 12, 0)

    with pytest.raises(ValueError, match="naive"):
        bus.publish(TOPIC_RESERVATION, [message(scheduled_enqueue_time=naive)])

    assert bus.receive(TOPIC_RESERVATION, SUB_PAYMENT) == []


def test_times_round_trip_to_the_microsecond(bus: SqliteMessageBus, clock: ManualClock) -> None:
    clock.advance(0.123456)
    bus.publish(TOPIC_RESERVATION, [message()])

    (received,) = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT)

    assert received.enqueued_time == clock()
    assert received.enqueued_time.tzinfo is not None
    assert received.enqueued_time.utcoffset() == timedelta(0)


def test_an_id_is_accepted_again_once_its_window_ends_between_two_sweeps(
    bus: SqliteMessageBus, clock: ManualClock
) -> None:
    repeated = message()
    bus.publish(TOPIC_RESERVATION, [repeated])
    clock.advance(WINDOW - 1)
    bus.publish(TOPIC_RESERVATION, [message()])  # sweeps expired ids now, before `repeated` expires
    clock.advance(2)

    bus.publish(TOPIC_RESERVATION, [repeated])

    received = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT, max_messages=10)
    assert [m.message_id for m in received].count(repeated.message_id) == 2


def test_an_id_stays_a_duplicate_for_the_whole_window_after_its_first_send(
    bus: SqliteMessageBus, clock: ManualClock
) -> None:
    repeated = message()
    bus.publish(TOPIC_RESERVATION, [repeated])
    clock.advance(WINDOW - 10)
    bus.publish(TOPIC_RESERVATION, [repeated])  # dropped, and does not stretch the window
    clock.advance(11)

    bus.publish(TOPIC_RESERVATION, [repeated])

    received = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT, max_messages=10)
    assert [m.message_id for m in received].count(repeated.message_id) == 2


CONSUMER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from devhost.embedded.sqlite_bus import SqliteMessageBus

    bus = SqliteMessageBus(Path(sys.argv[1]))
    seen = []
    while batch := bus.receive("reservation", "payment", max_messages=3):
        for message in batch:
            bus.complete(message)
            seen.append(message.message_id)
    bus.close()
    print(json.dumps(seen))
    """
)


def test_consumers_in_several_processes_get_each_message_exactly_once(
    tmp_path: Path,
) -> None:
    publisher = SqliteMessageBus(tmp_path)
    sent = [message() for _ in range(600)]
    publisher.publish(TOPIC_RESERVATION, sent)
    publisher.close()

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    consumers = [
        subprocess.Popen(
            [sys.executable, "-c", CONSUMER, str(tmp_path)], stdout=subprocess.PIPE, env=env
        )
        for _ in range(3)
    ]
    outputs = [consumer.communicate(timeout=60)[0] for consumer in consumers]

    assert [consumer.returncode for consumer in consumers] == [0, 0, 0]
    delivered = Counter(message_id for out in outputs for message_id in json.loads(out))
    assert set(delivered) == {m.message_id for m in sent}
    assert set(delivered.values()) == {1}


def test_the_default_clock_is_utc_now(tmp_path: Path) -> None:
    lock = timedelta(seconds=TOPICS[TOPIC_RESERVATION].subscriptions[0].lock_duration_seconds)
    bus = SqliteMessageBus(tmp_path)
    before = datetime.now(UTC)
    bus.publish(TOPIC_RESERVATION, [message()])
    (received,) = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT)
    after = datetime.now(UTC)
    bus.close()

    assert before <= received.enqueued_time <= after
    assert before + lock <= received.locked_until <= after + lock


KILLED_MIDWAY = textwrap.dedent(
    """
    import sys, time, uuid
    from pathlib import Path
    from devhost.embedded.sqlite_bus import SqliteMessageBus
    from shared.ports import LockLost, OutboundMessage

    bus = SqliteMessageBus(Path(sys.argv[1]))
    for n in range(100):
        bus.publish("reservation", [OutboundMessage(str(n).encode(), str(uuid.uuid4()), "S")])
    (held,) = bus.receive("reservation", "payment")
    print(held.body.decode(), flush=True)
    time.sleep(60)
    """
)


def test_a_bus_killed_with_sigkill_keeps_every_published_message_and_its_locks(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    victim = subprocess.Popen(
        [sys.executable, "-c", KILLED_MIDWAY, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert victim.stdout is not None
    held_body = victim.stdout.readline().strip()
    victim.kill()
    victim.wait(timeout=30)

    bus = SqliteMessageBus(tmp_path)
    try:
        received = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT, max_messages=200)
        assert bus.active_count(TOPIC_RESERVATION, SUB_PAYMENT) == 100
    finally:
        bus.close()

    assert held_body == "0"
    assert sorted(int(m.body) for m in received) == list(range(1, 100))


def test_settlements_racing_from_many_threads_each_get_their_own_outcome(
    bus: SqliteMessageBus, clock: ManualClock
) -> None:
    """Concurrent settlements share transactions; each still answers for itself: a stale lock
    raises LockLost for that message only, and the others are settled."""
    bus.publish(TOPIC_RESERVATION, [message() for _ in range(40)])
    received = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT, max_messages=40)
    lock = timedelta(seconds=TOPICS[TOPIC_RESERVATION].subscriptions[0].lock_duration_seconds)
    clock.advance(lock.total_seconds() + 1)
    stale = received[0]
    bus.receive(TOPIC_RESERVATION, SUB_PAYMENT, max_messages=1)  # relocks the first one
    fresh = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT, max_messages=39)
    start = threading.Barrier(40)

    def settle(received_message) -> str:
        start.wait()
        try:
            bus.complete(received_message)
        except LockLost:
            return "lost"
        return "completed"

    with ThreadPoolExecutor(max_workers=40) as pool:
        outcomes = list(pool.map(settle, [stale, *fresh]))

    assert outcomes == ["lost"] + ["completed"] * 39
    assert bus.active_count(TOPIC_RESERVATION, SUB_PAYMENT) == 1  # the relocked first message


def test_complete_all_settles_the_held_messages_at_once_and_returns_the_lost_ones(
    bus: SqliteMessageBus, clock: ManualClock
) -> None:
    bus.publish(TOPIC_RESERVATION, [message() for _ in range(5)])
    stale, *held = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT, max_messages=5)
    clock.advance(TOPICS[TOPIC_RESERVATION].subscriptions[0].lock_duration_seconds + 1)
    relocked = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT, max_messages=5)
    bus.complete(relocked[-1])
    already_completed = next(m for m in held if m.sequence_number == relocked[-1].sequence_number)
    still_held = relocked[1:-1]

    lost = bus.complete_all([stale, already_completed, *still_held])

    assert lost == [stale, already_completed]
    assert bus.active_count(TOPIC_RESERVATION, SUB_PAYMENT) == 1  # the first one, relocked
    (first_again,) = [m for m in relocked if m.sequence_number == stale.sequence_number]
    assert bus.complete_all([first_again]) == []
    assert bus.active_count(TOPIC_RESERVATION, SUB_PAYMENT) == 0
    assert bus.complete_all([]) == []


def test_complete_all_does_not_complete_a_message_of_another_subscription(
    bus: SqliteMessageBus,
) -> None:
    bus.publish(TOPIC_RESERVATION, [message()])
    (held,) = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT)
    forged = dataclasses.replace(held, subscription=SUB_NOTICE, topic=TOPIC_PAYMENT)

    assert bus.complete_all([forged]) == [forged]
    assert bus.active_count(TOPIC_RESERVATION, SUB_PAYMENT) == 1
