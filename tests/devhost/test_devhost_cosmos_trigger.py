"""The Cosmos DB trigger loop over a real embedded store and its change feed, in-process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from devhost.cosmos_trigger import CosmosTrigger
from devhost.embedded.sqlite_store import SqliteDocumentStore
from devhost.invocation import Invoker
from devhost.metadata import FunctionSpec, functions_of
from tests.support.eventually import eventually

CONTAINER, PREFIX = "musicals", "projection-"


class Recorder:
    def __init__(self, failures: int = 0) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.failures_left = failures
        self._lock = threading.Lock()

    def __call__(self, documents: func.DocumentList) -> None:
        with self._lock:
            self.batches.append([document.to_dict() for document in documents])
            if self.failures_left:
                self.failures_left -= 1
                raise RuntimeError("failing on purpose")

    @property
    def ids(self) -> list[str]:
        return [document["id"] for batch in self.batches for document in batch]


def _spec(
    recorder: Recorder,
    retry: dict[str, str] | None = None,
    is_async: bool = False,
    **trigger: Any,
) -> FunctionSpec:
    app = func.FunctionApp()
    if is_async:

        async def on_change(documents: func.DocumentList) -> None:
            recorder(documents)
    else:

        def on_change(documents: func.DocumentList) -> None:
            recorder(documents)

    decorated: Any = on_change
    if retry is not None:
        decorated = app.retry(**retry)(decorated)
    app.cosmos_db_trigger(
        arg_name="documents",
        container_name=CONTAINER,
        database_name="outerpark",
        connection="C",
        lease_container_name="leases",
        lease_container_prefix=PREFIX,
        **{"start_from_beginning": True, **trigger},
    )(decorated)
    (spec,) = functions_of(app)
    return spec


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Callable[[], SqliteDocumentStore]]:
    opened: list[SqliteDocumentStore] = []

    def open_() -> SqliteDocumentStore:
        opened.append(SqliteDocumentStore(tmp_path, synchronous="NORMAL"))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def run_trigger(invoker: Invoker) -> Iterator[Callable[..., CosmosTrigger]]:
    started: list[CosmosTrigger] = []

    def start(spec: FunctionSpec, store: SqliteDocumentStore) -> CosmosTrigger:
        trigger = CosmosTrigger(spec, store, invoker.call_from_thread, idle_wait_seconds=0.2)
        trigger.start()
        started.append(trigger)
        return trigger

    yield start
    for trigger in started:
        trigger.stop(timeout_seconds=5)


def _write(store: SqliteDocumentStore, *ids: str, **fields: Any) -> None:
    for id in ids:
        store.upsert(CONTAINER, {"id": id, "musicalId": id, **fields})


def test_changes_arrive_in_batches_of_max_items_with_their_lsn_and_are_checkpointed(
    open_store: Callable[[], SqliteDocumentStore], run_trigger: Callable[..., CosmosTrigger]
) -> None:
    store = open_store()
    _write(store, "a", "b", "c")
    recorder = Recorder()

    run_trigger(_spec(recorder, max_items_per_invocation=2), store)

    eventually(lambda: len(recorder.ids) == 3)
    assert [[d["id"] for d in batch] for batch in recorder.batches] == [["a", "b"], ["c"]]
    lsns = [d["_lsn"] for batch in recorder.batches for d in batch]
    assert lsns == sorted(lsns)
    eventually(lambda: store.get_checkpoint(CONTAINER, PREFIX) == lsns[-1])


def test_after_a_restart_only_changes_past_the_checkpoint_are_delivered(
    open_store: Callable[[], SqliteDocumentStore], run_trigger: Callable[..., CosmosTrigger]
) -> None:
    first_store = open_store()
    _write(first_store, "a", "b")
    first = Recorder()
    trigger = run_trigger(_spec(first), first_store)
    eventually(lambda: len(first.ids) == 2)
    eventually(lambda: first_store.get_checkpoint(CONTAINER, PREFIX) > 0)
    trigger.stop(timeout_seconds=5)
    first_store.close()

    second_store = open_store()
    _write(second_store, "c")
    second = Recorder()
    run_trigger(_spec(second), second_store)

    eventually(lambda: second.ids == ["c"])


def test_a_new_lease_without_start_from_beginning_skips_what_was_there_but_not_later_writes(
    open_store: Callable[[], SqliteDocumentStore], run_trigger: Callable[..., CosmosTrigger]
) -> None:
    store = open_store()
    _write(store, "old")
    recorder = Recorder()
    trigger = run_trigger(_spec(recorder, start_from_beginning=False), store)
    eventually(lambda: store.get_checkpoint(CONTAINER, PREFIX) > 0)
    _write(store, "new")
    eventually(lambda: recorder.ids == ["new"])
    trigger.stop(timeout_seconds=5)

    _write(store, "while-down")
    run_trigger(_spec(recorder, start_from_beginning=False), store)

    eventually(lambda: recorder.ids == ["new", "while-down"])


def test_an_empty_new_lease_without_start_from_beginning_still_resumes_after_a_restart(
    open_store: Callable[[], SqliteDocumentStore], run_trigger: Callable[..., CosmosTrigger]
) -> None:
    store = open_store()
    recorder = Recorder()
    trigger = run_trigger(_spec(recorder, start_from_beginning=False), store)
    assert trigger.leased.wait(5)
    trigger.stop(timeout_seconds=5)

    _write(store, "while-down")
    run_trigger(_spec(recorder, start_from_beginning=False), store)

    eventually(lambda: recorder.ids == ["while-down"])


def test_a_failing_batch_is_retried_under_the_retry_policy_then_checkpointed(
    open_store: Callable[[], SqliteDocumentStore], run_trigger: Callable[..., CosmosTrigger]
) -> None:
    store = open_store()
    _write(store, "a")
    recorder = Recorder(failures=2)
    retry = {"strategy": "fixed_delay", "max_retry_count": "3", "delay_interval": "00:00:00.05"}

    run_trigger(_spec(recorder, retry=retry), store)

    eventually(lambda: store.get_checkpoint(CONTAINER, PREFIX) > 0)
    assert recorder.ids == ["a", "a", "a"]


def test_once_retries_are_spent_the_host_moves_on_to_the_next_changes(
    open_store: Callable[[], SqliteDocumentStore],
    run_trigger: Callable[..., CosmosTrigger],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = open_store()
    _write(store, "poison")
    recorder = Recorder(failures=3)
    retry = {
        "strategy": "exponential_backoff",
        "max_retry_count": "2",
        "minimum_interval": "00:00:00.01",
        "maximum_interval": "00:00:00.05",
    }
    run_trigger(_spec(recorder, retry=retry), store)
    eventually(lambda: store.get_checkpoint(CONTAINER, PREFIX) > 0)

    _write(store, "next")

    eventually(lambda: recorder.ids == ["poison", "poison", "poison", "next"])
    assert "retries exhausted" in caplog.text


def test_without_a_retry_policy_a_failing_batch_is_skipped_loudly(
    open_store: Callable[[], SqliteDocumentStore],
    run_trigger: Callable[..., CosmosTrigger],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = open_store()
    _write(store, "poison", "next")
    recorder = Recorder(failures=1)

    with caplog.at_level(logging.ERROR, logger="devhost.cosmos"):
        run_trigger(_spec(recorder, max_items_per_invocation=1), store)
        eventually(lambda: recorder.ids == ["poison", "next"])

    assert "SKIPPING" in caplog.text
    assert "no @app.retry policy" in caplog.text


def test_stopping_while_waiting_to_retry_leaves_the_batch_for_the_next_start(
    open_store: Callable[[], SqliteDocumentStore], run_trigger: Callable[..., CosmosTrigger]
) -> None:
    store = open_store()
    _write(store, "a")
    recorder = Recorder(failures=1)
    retry = {"strategy": "fixed_delay", "max_retry_count": "-1", "delay_interval": "00:01:00"}
    trigger = run_trigger(_spec(recorder, retry=retry), store)
    eventually(lambda: recorder.ids == ["a"])

    trigger.stop(timeout_seconds=5)

    assert store.get_checkpoint(CONTAINER, PREFIX) == 0
    run_trigger(_spec(recorder, retry=retry), store)
    eventually(lambda: recorder.ids == ["a", "a"])
    eventually(lambda: store.get_checkpoint(CONTAINER, PREFIX) > 0)


def test_an_async_function_gets_its_batches_too(
    open_store: Callable[[], SqliteDocumentStore], run_trigger: Callable[..., CosmosTrigger]
) -> None:
    store = open_store()
    _write(store, "a")
    recorder = Recorder()

    run_trigger(_spec(recorder, is_async=True), store)

    eventually(lambda: recorder.ids == ["a"])
