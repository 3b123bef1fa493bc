"""Store writes per minute while the payment gateway is down, with many deferred payments.

    python -m bench.deferred_writes [--payments 1000] [--warmup 60] [--minutes 1]

In one process, on simulated time: the payment handlers of `shared.handlers.payments` with the
default settings (backoff base 1 s, cap 20 s; breaker threshold 5, open 10 s, cache 1 s), the
real circuit breaker, the embedded SQLite store wrapped in a counting decorator
(`bench.counting_store.CountingStore`, at the DocumentStore port) and the embedded bus on the
same simulated clock, and a gateway that answers every call 503. `--payments` reservations are
placed; after `--warmup` simulated seconds (the backoff reaches its cap) the store writes, bus
sends and gateway calls of the next `--minutes` simulated minutes are counted, as the scheduled
retries come due and are handled one by one, as the payment function would.

Simulated time makes the figure independent of the machine's speed: it counts what the code
asks of the store, not how fast this machine's disk is.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from bench.counting_store import CountingStore
from devhost.embedded.sqlite_bus import SqliteMessageBus
from devhost.embedded.sqlite_store import SqliteDocumentStore
from shared.breaker import BreakerConfig, CircuitBreaker, GuardedPaymentGateway
from shared.domain.events import Event, EventType, ReservationFacts
from shared.handlers.payments import RETRY_SUBJECT, PaymentDeps, on_reservation_placed, on_retry
from shared.ports import GatewayUnavailable, OutboundMessage
from shared.retry_policy import payment_retry_delay
from shared.settings import Settings
from shared.topology import SUB_PAYMENT, TOPIC_RESERVATION
from tests.support.manual_clock import ManualClock

STEP_SECONDS = 0.1


class DownGateway:
    """The card gateway answering 503 to everything (what the client makes of it)."""

    def __init__(self) -> None:
        self.calls = 0

    def _fail(self, *args: object, **kwargs: object) -> None:
        self.calls += 1
        raise GatewayUnavailable("payment gateway answered 503")

    confirm = cancel = lookup = _fail

    def admits(self) -> bool:
        return True


class CountingBus:
    """The bus, with the messages published counted."""

    def __init__(self, inner: SqliteMessageBus) -> None:
        self._inner = inner
        self.sent = 0

    def publish(self, topic: str, messages: Sequence[OutboundMessage]) -> None:
        self.sent += len(messages)
        self._inner.publish(topic, messages)


def placed(index: int, clock: ManualClock) -> Event:
    reservation_id = f"m1-r{index:06d}"
    facts = ReservationFacts(
        reservation_id=reservation_id,
        musical_id="m1",
        musical_title="Outage",
        customer_id=f"c{index % 97}",
        seats=1,
        amount=100,
        created_at=clock.now(),
    )
    return Event(
        event_id=f"{reservation_id}.placed",
        event_type=EventType.RESERVATION_PLACED,
        correlation_id=reservation_id,
        occurred_at=clock.now(),
        payload=facts.to_json_dict(),
    )


def run(payments: int, warmup: float, minutes: float, data_dir: Path) -> dict[str, float]:
    settings = Settings()
    clock = ManualClock()
    store = CountingStore(SqliteDocumentStore(data_dir / "store", synchronous="NORMAL"))
    raw_bus = SqliteMessageBus(data_dir / "bus", clock=clock.now)
    bus = CountingBus(raw_bus)
    down = DownGateway()
    breaker = CircuitBreaker(store, BreakerConfig.from_settings(settings), clock=clock)
    deps = PaymentDeps(
        store=store,
        gateway=GuardedPaymentGateway(down, breaker),
        bus=bus,
        clock=clock,
        retry_delay=partial(
            payment_retry_delay,
            base_seconds=settings.payment_retry_base_seconds,
            max_seconds=settings.payment_retry_max_seconds,
        ),
    )
    for index in range(payments):
        on_reservation_placed(placed(index, clock), deps)

    handled = 0

    def run_for(seconds: float) -> None:
        nonlocal handled
        until = clock.now().timestamp() + seconds
        while clock.now().timestamp() < until:
            clock.advance(STEP_SECONDS)
            while due := raw_bus.receive(TOPIC_RESERVATION, SUB_PAYMENT, max_messages=100):
                for message in due:
                    if message.subject == RETRY_SUBJECT:
                        body = json.loads(message.body)
                        on_retry(body["reservationId"], body["deferral"], deps)
                        handled += 1
                    raw_bus.complete(message)

    run_for(warmup)
    store.reset()
    bus.sent, down.calls, handled = 0, 0, 0
    started = time.monotonic()
    run_for(minutes * 60)
    wall = time.monotonic() - started
    raw_bus.close()
    writes: Counter[str] = store.writes
    return {
        "store_writes": sum(writes.values()) / minutes,
        "payment_writes": writes["payments"] / minutes,
        "breaker_writes": writes["control"] / minutes,
        "operations": sum(store.operations.values()) / minutes,
        "sends": bus.sent / minutes,
        "gateway_calls": down.calls / minutes,
        "retries_handled": handled / minutes,
        "wall_seconds": wall,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=1000)
    parser.add_argument("--warmup", type=float, default=60.0, help="simulated seconds")
    parser.add_argument("--minutes", type=float, default=1.0, help="simulated minutes measured")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="outerpark-deferred-writes-") as tmp:
        figures = run(args.payments, args.warmup, args.minutes, Path(tmp))
    print(
        f"{args.payments} deferred payments, gateway down (503), default settings,"
        f" simulated time, after a {args.warmup:.0f} s warm-up; per simulated minute:"
    )
    print(
        f"  store writes {figures['store_writes']:,.0f}"
        f" (payments {figures['payment_writes']:,.0f}, breaker {figures['breaker_writes']:,.0f});"
        f" operations written {figures['operations']:,.0f}"
    )
    print(
        f"  retries handled {figures['retries_handled']:,.0f};"
        f" bus sends {figures['sends']:,.0f}; gateway calls {figures['gateway_calls']:,.0f}"
    )
    print(f"  ({figures['wall_seconds']:.1f} s of wall time for the measured part)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
