"""Drives a Service Bus topic-triggered function from the embedded bus, as the Functions host
does: peek-lock receive, up to `maxConcurrentCalls` invocations at once, the lock renewed while an
invocation runs (up to `maxAutoLockRenewalDuration`), complete on success, abandon on exception
(so the bus counts the delivery and dead-letters past the subscription's max delivery count).

Successes are completed by one settler thread per trigger, everything finished meanwhile in one
bus transaction: a slot is free for the next message as soon as its function returns, and
consumers do not queue one by one for the bus. A host killed before the settler ran leaves those
messages locked; they are delivered again when the lock expires, as after any crash.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from azure.functions.servicebus import ServiceBusMessage

from devhost.host_config import ServiceBusOptions
from devhost.metadata import FunctionSpec
from shared.ports import LockLost, MessageReceiver, ReceivedMessage

log = logging.getLogger("devhost.servicebus")

Invoke = Callable[[FunctionSpec, Any], Any]


# Most messages one settler call completes (one SQL parameter each).
MAX_COMPLETIONS_PER_CALL = 256


class EmbeddedBus(MessageReceiver, Protocol):
    def wait_for_messages(self, topic: str, subscription: str, timeout: float) -> bool: ...

    def complete_all(self, messages: list[ReceivedMessage]) -> list[ReceivedMessage]: ...

    def listen_for_rings(self) -> None: ...


def function_message(message: ReceivedMessage) -> ServiceBusMessage:
    """The message as the Python worker hands it to a function."""
    return ServiceBusMessage(
        body=message.body,
        application_properties=dict(message.application_properties),
        user_properties=dict(message.application_properties),
        content_type=message.content_type,
        correlation_id=message.correlation_id,
        dead_letter_reason=message.dead_letter_reason,
        dead_letter_error_description=message.dead_letter_error_description,
        delivery_count=message.delivery_count,
        enqueued_time_utc=message.enqueued_time,
        label=message.subject,
        subject=message.subject,
        locked_until=message.locked_until,
        lock_token=message.lock_token,
        message_id=message.message_id,
        sequence_number=message.sequence_number,
    )


@dataclass
class _InFlight:
    message: ReceivedMessage
    received_at: float
    lock_span: float


class ServiceBusTrigger:
    """One consumer of (topic, subscription) for one function. `start`, then `stop`."""

    def __init__(
        self,
        spec: FunctionSpec,
        bus: EmbeddedBus,
        invoke: Invoke,
        options: ServiceBusOptions,
        idle_wait_seconds: float = 1.0,
    ) -> None:
        self.spec = spec
        self.topic = str(spec.trigger["topicName"])
        self.subscription = str(spec.trigger["subscriptionName"])
        self._bus = bus
        self._invoke = invoke
        self._slots = options.max_concurrent_calls
        self._max_renewal = options.max_auto_lock_renewal_duration.total_seconds()
        self._idle_wait = idle_wait_seconds
        self._stopping = threading.Event()
        self._lock = threading.Condition()
        self._in_flight: dict[str, _InFlight] = {}
        self._finished: list[ReceivedMessage] = []
        self._settler_done = False
        self._workers = ThreadPoolExecutor(self._slots, thread_name_prefix=f"sb-{spec.name}")
        self._threads = [
            threading.Thread(target=self._consume, name=f"sb-consume-{spec.name}", daemon=True),
            threading.Thread(target=self._renew_locks, name=f"sb-renew-{spec.name}", daemon=True),
        ]
        self._settler = threading.Thread(
            target=self._complete_finished, name=f"sb-settle-{spec.name}", daemon=True
        )

    def start(self) -> None:
        for thread in (*self._threads, self._settler):
            thread.start()

    def request_stop(self) -> None:
        """Stop receiving (returns at once; `stop` waits)."""
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()

    def stop(self, grace_seconds: float) -> None:
        """Stop receiving; let running invocations finish for up to `grace_seconds`, then abandon
        the messages of those still running (they are redelivered later, never lost)."""
        self.request_stop()
        for thread in self._threads:
            thread.join()
        deadline = time.monotonic() + grace_seconds
        with self._lock:
            while self._in_flight and (remaining := deadline - time.monotonic()) > 0:
                self._lock.wait(remaining)
            abandoned = list(self._in_flight.values())
            self._in_flight.clear()
            self._settler_done = True
            self._lock.notify_all()
        self._settler.join()
        for entry in abandoned:
            log.warning(
                "abandoning message %s of %s: still running at shutdown",
                entry.message.message_id,
                self.spec.name,
            )
            self._settle(entry.message, self._bus.abandon)
        self._workers.shutdown(wait=False, cancel_futures=True)

    def _consume(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                while len(self._in_flight) >= self._slots and not self._stopping.is_set():
                    self._lock.wait()
                free = self._slots - len(self._in_flight)
            if self._stopping.is_set():
                return
            try:
                messages = self._bus.receive(self.topic, self.subscription, max_messages=free)
                if not messages:
                    self._bus.wait_for_messages(self.topic, self.subscription, self._idle_wait)
                    continue
            except Exception:
                log.exception("receiving from %s/%s failed", self.topic, self.subscription)
                self._stopping.wait(self._idle_wait)
                continue
            now = time.monotonic()
            with self._lock:
                for message in messages:
                    span = (message.locked_until - datetime.now(UTC)).total_seconds()
                    self._in_flight[message.lock_token] = _InFlight(message, now, max(span, 1.0))
            for message in messages:
                self._workers.submit(self._run, message)

    def _run(self, message: ReceivedMessage) -> None:
        try:
            self._invoke(self.spec, function_message(message))
        except Exception as error:
            log.exception(
                "function %s failed on message %s (delivery %d): %s: %s; abandoning it (past the"
                " subscription's max delivery count the bus dead-letters it)",
                self.spec.name,
                message.message_id,
                message.delivery_count,
                type(error).__name__,
                error,
                extra={
                    "function": self.spec.name,
                    "correlation_id": message.correlation_id,
                    "error": type(error).__name__,
                },
            )
            self._release(message)
        else:
            self._finish(message)

    def _finish(self, message: ReceivedMessage) -> None:
        """Free the message's slot and hand it to the settler (unless shutdown abandoned it)."""
        with self._lock:
            entry = self._in_flight.pop(message.lock_token, None)
            if entry is not None:
                self._finished.append(entry.message)
            self._lock.notify_all()

    def _release(self, message: ReceivedMessage) -> None:
        """Abandon a message whose invocation failed (unless shutdown already abandoned it)."""
        with self._lock:
            entry = self._in_flight.pop(message.lock_token, None)
            self._lock.notify_all()
        if entry is not None:
            self._settle(entry.message, self._bus.abandon)

    def _complete_finished(self) -> None:
        """The settler: completes what the invocations finished, many at a time, until stop."""
        while True:
            with self._lock:
                while not self._finished and not self._settler_done:
                    self._lock.wait()
                batch = self._finished[:MAX_COMPLETIONS_PER_CALL]
                del self._finished[:MAX_COMPLETIONS_PER_CALL]
                if not batch:
                    return
            try:
                lost = self._bus.complete_all(batch)
            except Exception:
                log.exception("completing %d message(s) of %s failed", len(batch), self.spec.name)
                continue
            for message in lost:
                log.warning(
                    "lock of message %s was lost before complete: it will be delivered again",
                    message.message_id,
                )

    def _settle(self, message: ReceivedMessage, settle: Callable[[ReceivedMessage], None]) -> None:
        try:
            settle(message)
        except LockLost:
            log.warning(
                "lock of message %s was lost before %s: it will be delivered again",
                message.message_id,
                settle.__name__,
            )
        except Exception:
            log.exception("settling message %s failed", message.message_id)

    def _renewal_check_interval(self) -> float:
        """Often enough to renew the shortest running lock in its second half (at most 1 s)."""
        with self._lock:
            spans = [entry.lock_span for entry in self._in_flight.values()]
        return min([1.0, *(span / 4 for span in spans)])

    def _renew_locks(self) -> None:
        """Renew each running message's lock once half of it has passed, as the SDK does."""
        while not self._stopping.wait(self._renewal_check_interval()):
            now = time.monotonic()
            with self._lock:
                due = [
                    entry
                    for entry in self._in_flight.values()
                    if now - entry.received_at < self._max_renewal
                    and (entry.message.locked_until - datetime.now(UTC)).total_seconds()
                    < entry.lock_span / 2
                ]
            for entry in due:
                try:
                    locked_until = self._bus.renew_lock(entry.message)
                except LockLost:
                    log.warning("lock of message %s was lost", entry.message.message_id)
                    continue
                except Exception:
                    log.exception("renewing the lock of %s failed", entry.message.message_id)
                    continue
                entry.message = replace(entry.message, locked_until=locked_until)
