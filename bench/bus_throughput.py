"""Throughput of the embedded message bus: publish + receive + complete, messages per second.

    .venv/bin/python -m bench.bus_throughput [--messages 5000] [--threads 16] [--data-dir DIR]

Scenarios, each on a fresh bus.db with the real topology and real durable commits:
- single: one thread publishes a message, receives it and completes it, N times over;
- consumers: N messages are published one per call, then `--threads` threads receive and
  complete them (one message per receive, as a trigger with prefetch 0 would);
- live: one publisher thread publishes one message per call while `--threads` consumers wait
  with wait_for_messages and drain the subscription as messages arrive.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from devhost.embedded.sqlite_bus import SqliteMessageBus
from shared.ports import OutboundMessage
from shared.topology import SUB_PAYMENT, TOPIC_RESERVATION

BODY = b'{"reservationId": "3f1c", "musicalId": "m-1", "customerId": "c-1", "seats": 2}'


def outbound() -> OutboundMessage:
    return OutboundMessage(
        body=BODY,
        message_id=str(uuid.uuid4()),
        subject="ReservationPlaced",
        correlation_id=str(uuid.uuid4()),
        application_properties={"schemaVersion": 1},
    )


def drain(bus: SqliteMessageBus, stop: Callable[[], bool], wait: bool) -> int:
    """Receive and complete one message at a time until the subscription is empty (and, when
    `wait`, until `stop()` says the publisher is done). Returns how many it completed."""
    done = 0
    while True:
        batch = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT)
        if batch:
            bus.complete(batch[0])
            done += 1
        elif not wait or stop():
            return done
        else:
            bus.wait_for_messages(TOPIC_RESERVATION, SUB_PAYMENT, timeout=0.5)


def single(bus: SqliteMessageBus, messages: int, _threads: int) -> int:
    for _ in range(messages):
        bus.publish(TOPIC_RESERVATION, [outbound()])
        (received,) = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT)
        bus.complete(received)
    return messages


def start_consumers(
    bus: SqliteMessageBus, threads: int, stop: Callable[[], bool], wait: bool
) -> tuple[list[threading.Thread], list[int]]:
    """Start `threads` draining threads; each writes its completed count to its slot."""
    counts = [0] * threads

    def consume(index: int) -> None:
        counts[index] = drain(bus, stop, wait)

    workers = [threading.Thread(target=consume, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    return workers, counts


def consumers(bus: SqliteMessageBus, messages: int, threads: int) -> int:
    for _ in range(messages):
        bus.publish(TOPIC_RESERVATION, [outbound()])
    workers, counts = start_consumers(bus, threads, lambda: True, wait=False)
    for worker in workers:
        worker.join()
    return sum(counts)


def live(bus: SqliteMessageBus, messages: int, threads: int) -> int:
    published = threading.Event()
    workers, counts = start_consumers(bus, threads, published.is_set, wait=True)
    for _ in range(messages):
        bus.publish(TOPIC_RESERVATION, [outbound()])
    published.set()
    for worker in workers:
        worker.join()
    return sum(counts)


SCENARIOS: dict[str, Callable[[SqliteMessageBus, int, int], int]] = {
    "single": single,
    "consumers": consumers,
    "live": live,
}


def measure(name: str, data_dir: Path, messages: int, threads: int) -> None:
    bus = SqliteMessageBus(data_dir / name)
    started = time.perf_counter()
    completed = SCENARIOS[name](bus, messages, threads)
    elapsed = time.perf_counter() - started
    left = bus.active_count(TOPIC_RESERVATION, SUB_PAYMENT)
    bus.close()
    used = 1 if name == "single" else threads
    print(
        f"{name:<10} threads={used:<3} messages={completed:<6} left={left:<3}"
        f" {elapsed:6.2f} s  {completed / elapsed:8.0f} msg/s (publish+receive+complete)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5_000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.data_dir) as scratch:
        for name in SCENARIOS:
            measure(name, Path(scratch), args.messages, args.threads)


if __name__ == "__main__":
    main()
