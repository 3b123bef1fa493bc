"""The shared circuit breaker, over the real embedded store, with a clock the tests move."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.breaker import BreakerConfig, BreakerOpen, BreakerState, CircuitBreaker
from shared.ports import (
    AlreadyProcessed,
    Document,
    GatewayUnavailable,
    MerchantRejected,
    PaymentDeclined,
    StillProcessing,
)
from shared.settings import Settings
from tests.support.manual_clock import ManualClock
from tests.support.memory_store import MemoryDocumentStore

CONFIG = BreakerConfig(
    failure_threshold=3,
    open_seconds=10,
    half_open_probes=1,
    cache_seconds=1,
    probe_lease_seconds=12,
)


class CountingStore:
    """The real store, counting the calls the breaker makes to it."""

    def __init__(self, store: MemoryDocumentStore) -> None:
        self._store = store
        self.reads = 0
        self.writes = 0

    def read(self, container: str, partition_key: str, id: str) -> Document:
        self.reads += 1
        return self._store.read(container, partition_key, id)

    def create(self, container: str, document: Document) -> Document:
        self.writes += 1
        return self._store.create(container, document)

    def replace(self, container: str, document: Document, if_match: str | None = None) -> Document:
        self.writes += 1
        return self._store.replace(container, document, if_match)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_breaker(store: MemoryDocumentStore, clock: ManualClock) -> Callable[..., CircuitBreaker]:
    """Each breaker built here plays one instance of the Function App; they share the store."""

    def make(config: BreakerConfig = CONFIG) -> CircuitBreaker:
        return CircuitBreaker(store, config, clock=clock)

    return make


def succeed() -> str:
    return "ok"


def fail() -> str:
    raise GatewayUnavailable("503")


def decline() -> str:
    raise PaymentDeclined("REJECT_CARD_PAYMENT", "card refused")


def fail_times(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(GatewayUnavailable):
            breaker.call(fail)


def open_breaker(breaker: CircuitBreaker) -> None:
    fail_times(breaker, CONFIG.failure_threshold)
    assert breaker.state().state == "open"


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


class BlockingCalls:
    """Operations that stay in flight until released, as a slow or hung gateway call would."""

    def __init__(self) -> None:
        self.entered = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, breaker: CircuitBreaker) -> None:
        def operation() -> str:
            with self._lock:
                self.entered += 1
            self._release.wait(10)
            return "ok"

        def run() -> None:
            try:
                breaker.call(operation)
            except BreakerOpen:
                with self._lock:
                    self.refused += 1

        thread = threading.Thread(target=run)
        self._threads.append(thread)
        thread.start()

    def release(self) -> None:
        self._release.set()
        for thread in self._threads:
            thread.join(10)


@pytest.fixture
def blocking_calls() -> Iterator[BlockingCalls]:
    calls = BlockingCalls()
    yield calls
    calls.release()


def test_a_closed_breaker_runs_calls_and_returns_their_result(make_breaker) -> None:
    breaker = make_breaker()

    assert breaker.call(succeed) == "ok"
    assert breaker.state().state == "closed"


def test_it_opens_after_the_threshold_of_consecutive_failures(make_breaker) -> None:
    breaker = make_breaker()

    fail_times(breaker, CONFIG.failure_threshold - 1)
    assert breaker.state().state == "closed"
    assert breaker.state().consecutive_failures == CONFIG.failure_threshold - 1

    fail_times(breaker, 1)
    assert breaker.state().state == "open"


def test_an_open_breaker_refuses_without_calling(make_breaker) -> None:
    breaker = make_breaker()
    open_breaker(breaker)
    calls: list[str] = []

    with pytest.raises(BreakerOpen) as refused:
        breaker.call(lambda: calls.append("called"))

    assert calls == []
    assert isinstance(refused.value, GatewayUnavailable)
    assert refused.value.retry_after_seconds == pytest.approx(CONFIG.open_seconds)


def test_a_success_between_failures_resets_the_count(make_breaker) -> None:
    breaker = make_breaker()

    fail_times(breaker, CONFIG.failure_threshold - 1)
    breaker.call(succeed)
    fail_times(breaker, CONFIG.failure_threshold - 1)

    assert breaker.state().state == "closed"
    assert breaker.state().consecutive_failures == CONFIG.failure_threshold - 1


def test_declines_never_count_as_failures(make_breaker) -> None:
    breaker = make_breaker()

    for _ in range(CONFIG.failure_threshold * 2):
        with pytest.raises(PaymentDeclined):
            breaker.call(decline)

    assert breaker.state().state == "closed"
    assert breaker.state().consecutive_failures == 0


def test_a_decline_breaks_a_run_of_failures(make_breaker) -> None:
    breaker = make_breaker()

    fail_times(breaker, CONFIG.failure_threshold - 1)
    with pytest.raises(PaymentDeclined):
        breaker.call(decline)
    fail_times(breaker, 1)

    assert breaker.state().state == "closed"


def test_the_state_tells_when_it_opened_and_how_long_to_wait(
    make_breaker, clock: ManualClock
) -> None:
    breaker = make_breaker()
    opened_at = clock.now()
    open_breaker(breaker)
    clock.advance(3.5)

    state = breaker.state()

    assert state == BreakerState(
        state="open",
        opened_at=opened_at,
        retry_after_seconds=7,
        consecutive_failures=CONFIG.failure_threshold,
    )
    assert state.model_dump(mode="json", by_alias=True)["retryAfterSeconds"] == 7


def test_it_turns_half_open_after_the_open_interval(make_breaker, clock: ManualClock) -> None:
    breaker = make_breaker()
    open_breaker(breaker)

    clock.advance(CONFIG.open_seconds - 0.1)
    assert breaker.state().state == "open"
    clock.advance(0.1)
    assert breaker.state().state == "half_open"
    assert breaker.state().retry_after_seconds == 0


def test_a_successful_probe_closes_the_breaker(make_breaker, clock: ManualClock) -> None:
    breaker = make_breaker()
    open_breaker(breaker)
    clock.advance(CONFIG.open_seconds)

    assert breaker.call(succeed) == "ok"

    state = breaker.state()
    assert (state.state, state.consecutive_failures, state.opened_at) == ("closed", 0, None)


def test_a_declined_probe_closes_the_breaker_too(make_breaker, clock: ManualClock) -> None:
    breaker = make_breaker()
    open_breaker(breaker)
    clock.advance(CONFIG.open_seconds)

    with pytest.raises(PaymentDeclined):
        breaker.call(decline)

    assert breaker.state().state == "closed"


def test_a_failed_probe_reopens_the_breaker_for_another_interval(
    make_breaker, clock: ManualClock
) -> None:
    breaker = make_breaker()
    open_breaker(breaker)
    clock.advance(CONFIG.open_seconds)

    fail_times(breaker, 1)

    state = breaker.state()
    assert state.state == "open"
    assert state.opened_at == clock.now()
    assert state.retry_after_seconds == CONFIG.open_seconds


def test_while_a_probe_is_in_flight_other_calls_are_refused(
    make_breaker, clock: ManualClock
) -> None:
    breaker = make_breaker()
    open_breaker(breaker)
    clock.advance(CONFIG.open_seconds)
    nested: list[BaseException] = []

    def probe() -> str:
        with pytest.raises(BreakerOpen) as refused:
            breaker.call(succeed)
        nested.append(refused.value)
        return "probed"

    assert breaker.call(probe) == "probed"
    assert len(nested) == 1
    assert breaker.state().state == "closed"


def test_an_unexpected_error_in_a_probe_frees_its_slot(make_breaker, clock: ManualClock) -> None:
    breaker = make_breaker()
    open_breaker(breaker)
    clock.advance(CONFIG.open_seconds)

    def broken() -> str:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        breaker.call(broken)

    assert breaker.state().state == "half_open"
    assert breaker.call(succeed) == "ok"


def test_a_probe_slot_never_released_expires_after_its_lease(
    make_breaker, clock: ManualClock, blocking_calls: BlockingCalls
) -> None:
    hung, other = make_breaker(), make_breaker()
    open_breaker(hung)
    clock.advance(CONFIG.open_seconds)
    calls = blocking_calls
    calls.start(hung)
    wait_until(lambda: calls.entered == 1)

    clock.advance(CONFIG.cache_seconds)
    with pytest.raises(BreakerOpen):
        other.call(succeed)

    clock.advance(CONFIG.probe_lease_seconds)
    assert other.call(succeed) == "ok"
    assert other.state().state == "closed"


@pytest.mark.parametrize("probes", [1, 2])
def test_two_instances_let_only_the_configured_number_of_probes_through_in_total(
    make_breaker, clock: ManualClock, blocking_calls: BlockingCalls, probes: int
) -> None:
    config = CONFIG.model_copy(update={"half_open_probes": probes})
    instances = [make_breaker(config), make_breaker(config)]
    fail_times(instances[0], config.failure_threshold)
    clock.advance(config.open_seconds)
    calls = blocking_calls
    attempts = 8

    for attempt in range(attempts):
        calls.start(instances[attempt % 2])
    wait_until(lambda: calls.entered + calls.refused == attempts)

    assert calls.entered == probes


def test_failures_on_two_instances_add_up_and_both_see_the_breaker_open(
    make_breaker, clock: ManualClock
) -> None:
    first, second = make_breaker(), make_breaker()

    fail_times(first, 1)
    fail_times(second, 1)
    fail_times(first, 1)

    assert first.state().state == "open"
    clock.advance(CONFIG.cache_seconds)
    with pytest.raises(BreakerOpen):
        second.call(succeed)


def test_another_instance_sees_a_change_once_its_cache_expires(
    make_breaker, clock: ManualClock
) -> None:
    first, second = make_breaker(), make_breaker()
    assert second.state().state == "closed"

    open_breaker(first)

    assert second.state().state == "closed"
    clock.advance(CONFIG.cache_seconds)
    assert second.state().state == "open"


def test_concurrent_failures_from_two_instances_lose_no_update(make_breaker) -> None:
    config = CONFIG.model_copy(update={"failure_threshold": 1000, "cache_seconds": 0})
    instances = [make_breaker(config), make_breaker(config)]
    per_thread = 10

    def run(breaker: CircuitBreaker) -> None:
        fail_times(breaker, per_thread)

    threads = [threading.Thread(target=run, args=(instances[n % 2],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert instances[0].state().consecutive_failures == 4 * per_thread


def test_successes_on_a_closed_breaker_read_the_store_once_per_cache_period_and_never_write(
    store: MemoryDocumentStore, clock: ManualClock
) -> None:
    counting = CountingStore(store)
    breaker = CircuitBreaker(counting, CONFIG, clock=clock)

    for _ in range(50):
        breaker.call(succeed)
    clock.advance(CONFIG.cache_seconds)
    for _ in range(50):
        breaker.call(succeed)

    assert (counting.reads, counting.writes) == (2, 0)


def test_the_config_follows_the_app_settings() -> None:
    settings = Settings(
        BREAKER_FAILURE_THRESHOLD=7,
        BREAKER_OPEN_SECONDS=4,
        BREAKER_HALF_OPEN_PROBES=2,
        BREAKER_CACHE_SECONDS=0.5,
        GATEWAY_TIMEOUT_SECONDS=2,
    )

    config = BreakerConfig.from_settings(settings)

    assert config == BreakerConfig(
        failure_threshold=7,
        open_seconds=4,
        half_open_probes=2,
        cache_seconds=0.5,
        probe_lease_seconds=8,
    )


def test_already_processed_is_the_answer_of_a_working_gateway(make_breaker) -> None:
    breaker = make_breaker()

    def already() -> str:
        raise AlreadyProcessed("400 ALREADY_PROCESSED_PAYMENT")

    fail_times(breaker, CONFIG.failure_threshold - 1)
    with pytest.raises(AlreadyProcessed):
        breaker.call(already)

    assert breaker.state().consecutive_failures == 0


def test_still_processing_neither_resets_nor_adds_to_a_run_of_failures(make_breaker) -> None:
    breaker = make_breaker()

    def in_progress() -> str:
        raise StillProcessing("409")

    fail_times(breaker, CONFIG.failure_threshold - 1)
    for _ in range(CONFIG.failure_threshold):
        with pytest.raises(StillProcessing):
            breaker.call(in_progress)
    assert breaker.state().consecutive_failures == CONFIG.failure_threshold - 1
    fail_times(breaker, 1)

    assert breaker.state().state == "open"


def test_a_gateway_refusing_the_merchant_key_opens_the_breaker(make_breaker) -> None:
    breaker = make_breaker()

    def refused() -> str:
        raise MerchantRejected("UNAUTHORIZED_KEY", "bad key")

    for _ in range(CONFIG.failure_threshold):
        with pytest.raises(MerchantRejected):
            breaker.call(refused)

    assert breaker.state().state == "open"


def test_admits_answers_from_the_cached_state_without_a_write(make_breaker, store, clock) -> None:
    counting = CountingStore(store)
    breaker = CircuitBreaker(counting, CONFIG, clock=clock)
    assert breaker.admits()
    open_breaker(breaker)
    writes = counting.writes

    assert not breaker.admits()
    clock.advance(CONFIG.open_seconds)
    assert breaker.admits()  # half-open, a probe slot free
    assert counting.writes == writes
