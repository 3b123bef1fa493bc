"""The Service Bus trigger loop over a real embedded bus, in-process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import azure.functions as func
import pytest

from devhost.embedded.sqlite_bus import SqliteMessageBus
from devhost.host_config import ServiceBusOptions
from devhost.invocation import Invoker
from devhost.metadata import FunctionSpec, functions_of
from devhost.servicebus_trigger import ServiceBusTrigger
from shared.ports import OutboundMessage
from shared.topology import SubscriptionSpec, TopicSpec
from tests.support.eventually import eventually

TOPIC, SUBSCRIPTION = "orders", "billing"
MAX_DELIVERIES = 3


class Recorder:
    """What the hosted function saw, and how it should behave."""

    def __init__(self) -> None:
        self.messages: list[func.ServiceBusMessage] = []
        self.running = 0
        self.most_running = 0
        self.fail = False
        self.release = threading.Event()
        self.release.set()
        self.hold_seconds = 0.0
        self._lock = threading.Lock()

    def __call__(self, msg: func.ServiceBusMessage) -> None:
        with self._lock:
            self.messages.append(msg)
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            self.release.wait(10)
            time.sleep(self.hold_seconds)
            if self.fail:
                raise RuntimeError("failing on purpose")
        finally:
            with self._lock:
                self.running -= 1


def _spec(recorder: Recorder, is_async: bool = False) -> FunctionSpec:
    app = func.FunctionApp()

    if is_async:

        async def on_order(msg: func.ServiceBusMessage) -> None:
            recorder(msg)
    else:

        def on_order(msg: func.ServiceBusMessage) -> None:
            recorder(msg)

    app.service_bus_topic_trigger(
        arg_name="msg", topic_name=TOPIC, subscription_name=SUBSCRIPTION, connection="C"
    )(on_order)
    (spec,) = functions_of(app)
    return spec


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[SqliteMessageBus]:
    topics = {
        TOPIC: TopicSpec(
            TOPIC,
            (
                SubscriptionSpec(
                    SUBSCRIPTION, max_delivery_count=MAX_DELIVERIES, lock_duration_seconds=2
                ),
            ),
        )
    }
    bus = SqliteMessageBus(tmp_path, topics=topics)
    yield bus
    bus.close()


@pytest.fixture
def run_trigger(
    bus: SqliteMessageBus, invoker: Invoker
) -> Iterator[Callable[..., ServiceBusTrigger]]:
    started: list[ServiceBusTrigger] = []

    def start(recorder: Recorder, is_async: bool = False, **options: object) -> ServiceBusTrigger:
        trigger = ServiceBusTrigger(
            _spec(recorder, is_async),
            bus,
            invoker.call_from_thread,
            ServiceBusOptions.model_validate(options),
            idle_wait_seconds=0.2,
        )
        trigger.start()
        started.append(trigger)
        return trigger

    yield start
    for trigger in started:
        trigger.stop(grace_seconds=0)


def _publish(bus: SqliteMessageBus, message_id: str, **fields: object) -> None:
    bus.publish(
        TOPIC,
        [OutboundMessage(body=b'{"n": 1}', message_id=message_id, subject="OrderPlaced", **fields)],
    )


def test_the_function_gets_the_message_fields_azure_gives_it_and_success_completes_it(
    bus: SqliteMessageBus, run_trigger: Callable[..., ServiceBusTrigger]
) -> None:
    recorder = Recorder()
    run_trigger(recorder)
    before = datetime.now().astimezone()

    _publish(bus, "m-1", correlation_id="c-1", application_properties={"kind": "test", "n": 2})

    (msg,) = eventually(lambda: recorder.messages)
    assert msg.get_body() == b'{"n": 1}'
    assert msg.message_id == "m-1"
    assert msg.correlation_id == "c-1"
    assert msg.content_type == "application/json"
    assert msg.subject == msg.label == "OrderPlaced"
    assert msg.application_properties == msg.user_properties == {"kind": "test", "n": 2}
    assert msg.delivery_count == 1
    assert isinstance(msg.sequence_number, int)
    assert msg.lock_token
    assert before - timedelta(seconds=1) <= msg.enqueued_time_utc <= datetime.now().astimezone()
    assert msg.locked_until > msg.enqueued_time_utc
    eventually(lambda: bus.active_count(TOPIC, SUBSCRIPTION) == 0)
    assert bus.dead_letters(TOPIC, SUBSCRIPTION) == []


def test_an_exception_abandons_the_message_until_it_is_dead_lettered(
    bus: SqliteMessageBus, run_trigger: Callable[..., ServiceBusTrigger]
) -> None:
    recorder = Recorder()
    recorder.fail = True
    run_trigger(recorder)

    _publish(bus, "poison")

    (dead,) = eventually(lambda: bus.dead_letters(TOPIC, SUBSCRIPTION))
    assert dead.message_id == "poison"
    assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"
    assert [m.delivery_count for m in recorder.messages] == [1, 2, 3]
    assert bus.active_count(TOPIC, SUBSCRIPTION) == 0


def test_no_more_than_max_concurrent_calls_run_at_once(
    bus: SqliteMessageBus, run_trigger: Callable[..., ServiceBusTrigger]
) -> None:
    recorder = Recorder()
    recorder.release.clear()
    run_trigger(recorder, maxConcurrentCalls=2)

    for n in range(5):
        _publish(bus, f"m-{n}")
    eventually(lambda: recorder.running == 2)
    time.sleep(0.3)
    assert len(recorder.messages) == 2
    recorder.release.set()

    eventually(lambda: bus.active_count(TOPIC, SUBSCRIPTION) == 0)
    assert recorder.most_running == 2
    assert sorted(m.message_id for m in recorder.messages) == [f"m-{n}" for n in range(5)]


def test_the_lock_is_renewed_while_a_long_invocation_runs(
    bus: SqliteMessageBus, run_trigger: Callable[..., ServiceBusTrigger]
) -> None:
    recorder = Recorder()
    recorder.hold_seconds = 3.5  # well past the 2 s lock
    run_trigger(recorder)

    _publish(bus, "long")

    eventually(lambda: recorder.messages)
    eventually(lambda: bus.active_count(TOPIC, SUBSCRIPTION) == 0, timeout=8)
    assert [m.delivery_count for m in recorder.messages] == [1]


def test_an_async_function_is_run_on_the_event_loop(
    bus: SqliteMessageBus, run_trigger: Callable[..., ServiceBusTrigger]
) -> None:
    recorder = Recorder()
    run_trigger(recorder, is_async=True)

    _publish(bus, "async")

    eventually(lambda: bus.active_count(TOPIC, SUBSCRIPTION) == 0)
    assert [m.message_id for m in recorder.messages] == ["async"]


def test_stopping_abandons_an_invocation_still_running_after_the_grace_so_it_comes_again(
    bus: SqliteMessageBus, run_trigger: Callable[..., ServiceBusTrigger]
) -> None:
    recorder = Recorder()
    recorder.release.clear()
    trigger = run_trigger(recorder)
    _publish(bus, "in-flight")
    eventually(lambda: recorder.running == 1)

    trigger.stop(grace_seconds=0.1)

    (again,) = bus.receive(TOPIC, SUBSCRIPTION)
    assert again.message_id == "in-flight"
    assert again.delivery_count == 2
    recorder.release.set()


def test_stopping_lets_a_running_invocation_finish_within_the_grace(
    bus: SqliteMessageBus, run_trigger: Callable[..., ServiceBusTrigger]
) -> None:
    recorder = Recorder()
    recorder.hold_seconds = 0.5
    trigger = run_trigger(recorder)
    _publish(bus, "finishing")
    eventually(lambda: recorder.running == 1)

    trigger.stop(grace_seconds=5)

    assert bus.active_count(TOPIC, SUBSCRIPTION) == 0
    assert bus.dead_letters(TOPIC, SUBSCRIPTION) == []


class SlowSettlingBus(SqliteMessageBus):
    """The embedded bus, with `complete_all` held until the test lets it through."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.settling = threading.Event()
        self.settling.set()

    def complete_all(self, messages):  # type: ignore[no-untyped-def]
        self.settling.wait(10)
        return super().complete_all(messages)


def test_a_slot_frees_when_its_function_returns_and_stop_completes_what_finished(
    tmp_path: Path, invoker: Invoker
) -> None:
    """Completing is the settler's job: with completions held back, the next messages still
    run in the one slot; stopping then waits until every finished message is completed."""
    bus = SlowSettlingBus(
        tmp_path, topics={TOPIC: TopicSpec(TOPIC, (SubscriptionSpec(SUBSCRIPTION),))}
    )
    bus.settling.clear()
    recorder = Recorder()
    trigger = ServiceBusTrigger(
        _spec(recorder),
        bus,
        invoker.call_from_thread,
        ServiceBusOptions.model_validate({"maxConcurrentCalls": 1}),
        idle_wait_seconds=0.2,
    )
    trigger.start()
    for n in range(3):
        _publish(bus, f"m-{n}")

    eventually(lambda: len(recorder.messages) == 3)
    assert bus.active_count(TOPIC, SUBSCRIPTION) == 3  # run, not completed yet
    stopping = threading.Thread(target=trigger.stop, args=(5,))
    stopping.start()
    bus.settling.set()
    stopping.join(10)

    assert not stopping.is_alive()
    assert bus.active_count(TOPIC, SUBSCRIPTION) == 0
    assert recorder.most_running == 1
    bus.close()
