"""Drives a Cosmos DB-triggered function from the embedded store's change feed, as the Functions
host does: batches of up to `maxItemsPerInvocation` changes, a checkpoint per lease (the
function's `leaseContainerPrefix`) after each batch, `startFromBeginning` for a new lease.

A failing batch is retried under the function's `@app.retry` policy; once that is spent (or at
once, without a policy) the host moves on past the batch, as Azure does. Stopping mid-retry
leaves the batch unacknowledged: it is delivered again after a restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import azure.functions as func

from devhost.metadata import FunctionSpec
from devhost.retry import RetryPolicy, retry_policy_of
from shared.ports import Change, ChangeFeed, DocumentStore, NotFound
from shared.topology import LEASES

log = logging.getLogger("devhost.cosmos")

Invoke = Callable[[FunctionSpec, Any], Any]
DEFAULT_MAX_ITEMS = 100


class EmbeddedStore(DocumentStore, ChangeFeed, Protocol):
    def wait_for_changes(self, container: str, after_lsn: int, timeout: float) -> bool: ...


def function_documents(changes: list[Change]) -> func.DocumentList:
    """The batch as the Python worker hands it to a function (with Cosmos's `_lsn`)."""
    return func.DocumentList([_function_document(change) for change in changes])


def _function_document(change: Change) -> func.Document:
    # A Document is a UserDict: filled through `data`, its real dict, rather than key by key
    # through Python-level __setitem__ (which cost the trigger host ~5 ms per batch).
    document = func.Document()
    document.data = {**change.document, "_lsn": change.lsn}
    return document


class CosmosTrigger:
    """One change-feed consumer for one function. `start`, then `stop`."""

    def __init__(
        self,
        spec: FunctionSpec,
        store: EmbeddedStore,
        invoke: Invoke,
        idle_wait_seconds: float = 1.0,
    ) -> None:
        self.spec = spec
        self.container = str(spec.trigger["containerName"])
        self.lease_prefix = str(spec.trigger.get("leaseContainerPrefix") or "")
        self._start_from_beginning = bool(spec.trigger.get("startFromBeginning", False))
        self._max_items = int(spec.trigger.get("maxItemsPerInvocation") or DEFAULT_MAX_ITEMS)
        self._retry: RetryPolicy | None = retry_policy_of(spec.retry)
        self._store = store
        self._invoke = invoke
        self._idle_wait = idle_wait_seconds
        self._stopping = threading.Event()
        self.leased = threading.Event()
        """Set once the lease is read (or created) and changes are being consumed."""
        self._thread = threading.Thread(
            target=self._consume, name=f"cosmos-{spec.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Stop after the running invocation (returns at once; `stop` waits)."""
        self._stopping.set()

    def stop(self, timeout_seconds: float) -> None:
        """Stop after the running invocation (waiting at most `timeout_seconds` for it)."""
        self.request_stop()
        self._thread.join(timeout_seconds)
        if self._thread.is_alive():
            log.warning(
                "%s still running at shutdown; its batch will be redelivered", self.spec.name
            )

    def _consume(self) -> None:
        try:
            checkpoint = self._lease_start()
        except Exception:
            log.exception("cannot read the lease of %s; its trigger is off", self.spec.name)
            return
        self.leased.set()
        while not self._stopping.is_set():
            try:
                changes = self._store.read_changes(self.container, checkpoint, self._max_items)
                if not changes:
                    self._store.wait_for_changes(self.container, checkpoint, self._idle_wait)
                    continue
                if not self._deliver(changes):
                    return
                checkpoint = changes[-1].lsn
                self._store.set_checkpoint(self.container, self.lease_prefix, checkpoint)
            except Exception:
                log.exception("change feed of %s for %s failed", self.container, self.spec.name)
                self._stopping.wait(self._idle_wait)

    def _deliver(self, changes: list[Change]) -> bool:
        """Invoke (with retries) on a batch. False when stopped before it was done with."""
        retries = 0
        while True:
            try:
                self._invoke(self.spec, function_documents(changes))
                return True
            except Exception:
                log.exception(
                    "function %s failed on changes %d..%d of %s (retry %d)",
                    self.spec.name,
                    changes[0].lsn,
                    changes[-1].lsn,
                    self.container,
                    retries,
                    extra={"function": self.spec.name},
                )
            if self._retry is None or not self._retry.allows(retries):
                log.error(
                    "SKIPPING changes %d..%d of %s for %s: %s",
                    changes[0].lsn,
                    changes[-1].lsn,
                    self.container,
                    self.spec.name,
                    "no @app.retry policy" if self._retry is None else "retries exhausted",
                    extra={"function": self.spec.name},
                )
                return True
            retries += 1
            if self._stopping.wait(self._retry.delay(retries)):
                return False

    def _lease_start(self) -> int:
        """The checkpoint to resume from; for a new lease, the beginning or the current end."""
        checkpoint = self._store.get_checkpoint(self.container, self.lease_prefix)
        if checkpoint or self._start_from_beginning:
            return checkpoint
        marker = f"devhost-lease.{self.container}.{self.lease_prefix}"
        try:
            self._store.read(LEASES.name, marker, marker)
            return checkpoint
        except NotFound:
            pass
        end = self._end_of_feed()
        self._store.set_checkpoint(self.container, self.lease_prefix, end)
        self._store.upsert(
            LEASES.name, {"id": marker, "createdAt": datetime.now(UTC).isoformat(), "lsn": end}
        )
        return end

    def _end_of_feed(self) -> int:
        end = 0
        while changes := self._store.read_changes(self.container, end, 1000):
            end = changes[-1].lsn
        return end
