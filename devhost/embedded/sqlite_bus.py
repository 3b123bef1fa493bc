"""The embedded message bus: Service Bus topics and subscriptions over one SQLite file.

`SqliteMessageBus` implements `MessagePublisher` and `MessageReceiver` with the Service Bus
semantics the handlers rely on: fan-out to subscriptions by subject filter, duplicate detection
by message id within the topic's window, scheduled messages, peek-lock with delivery counts, and
dead-lettering after the subscription's max delivery count. Everything lives in `bus.db` (WAL),
so several threads and processes can publish to and consume from the same bus. Waiting
consumers are woken at once by the publishes of their own process, and by other processes'
through the `rings` socket (`devhost.embedded.bus_rings`) when one is given.

Durability: every commit survives SIGKILL. Publishing (and replaying or purging a dead letter)
also waits for the disk (synchronous=FULL), so an accepted message survives power loss too.
Receiving and settling do not (synchronous=NORMAL): losing one of those to a power cut can only
make a message be delivered again, which at-least-once consumers handle anyway; it never loses
a message. That halves the fsyncs of a message's life.

One connection per bus instance, used under a lock: SQLite has a single writer anyway, and
almost every bus call writes, so handing the connection over with a Python lock is cheaper than
letting threads meet in SQLite's busy handler. Other processes are kept out by BEGIN IMMEDIATE
and busy_timeout.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from devhost.embedded.bus_rings import RingListener, RingSender
from devhost.embedded.sqlite_bus_schema import (
    DEAD_LETTERED,
    MAX_DELIVERY_COUNT_EXCEEDED,
    MESSAGE_COLUMNS,
    READY,
    SCHEMA,
    WAITING,
    encode_properties,
    from_micros,
    max_delivery_description,
    message_from_row,
    to_micros,
)
from shared import topology
from shared.ports import LockLost, OutboundMessage, ReceivedMessage
from shared.topology import SubscriptionSpec, TopicSpec

BUS_FILE = "bus.db"
BUSY_TIMEOUT_SECONDS = 30.0
# How often a waiter re-reads the database for messages published by other processes.
CROSS_PROCESS_POLL_SECONDS = 0.5
# How often expired ids are swept out of the duplicate-detection table.
SENT_ID_PRUNE_INTERVAL_MICROS = 60 * 1_000_000

# A settlement is valid only while the receiver's lock is current.
_HELD_LOCK = (
    f"seq = ? AND topic = ? AND subscription = ? AND state = {WAITING}"
    " AND lock_token = ? AND visible_at > ?"
)


class DeadLetterNotFound(LookupError):
    """No dead letter with that sequence number in that subscription."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class SqliteMessageBus:
    """The embedded, durable Service Bus. See the module docstring."""

    def __init__(
        self,
        data_dir: Path,
        topics: Mapping[str, TopicSpec] = topology.TOPICS,
        clock: Callable[[], datetime] = utc_now,
        rings: Path | None = None,
    ) -> None:
        """`rings`: the socket of the process that listens for rings (`listen_for_rings`), to
        tell it of messages this one publishes (see `devhost.embedded.bus_rings`)."""
        self._topics = dict(topics)
        self._clock = clock
        data_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            data_dir / BUS_FILE,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,
            check_same_thread=False,
        )
        self._db.execute("PRAGMA journal_mode = WAL")
        self._durable = True
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._doorbells = {
            (topic.name, subscription.name): _Doorbell()
            for topic in self._topics.values()
            for subscription in topic.subscriptions
        }
        self._rings_path = rings
        self._ring_sender = RingSender(rings) if rings is not None else None
        self._ring_listener: RingListener | None = None
        self._closed = False
        self._next_sent_id_prune = 0

    # ------------------------------------------------------------------ publishing

    def publish(self, topic: str, messages: Sequence[OutboundMessage]) -> None:
        spec = self._topic(topic)
        now = self._now()
        window_end = now + spec.duplicate_detection_window_seconds * 1_000_000
        with self._transaction() as db:
            if now >= self._next_sent_id_prune:
                db.execute("DELETE FROM sent_ids WHERE expires_at <= ?", (now,))
                self._next_sent_id_prune = now + SENT_ID_PRUNE_INTERVAL_MICROS
            rows = []
            for message in messages:
                first_sight = db.execute(
                    "INSERT INTO sent_ids (topic, message_id, expires_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (topic, message_id) DO UPDATE SET expires_at = excluded.expires_at"
                    " WHERE sent_ids.expires_at <= ?",
                    (topic, message.message_id, window_end, now),
                ).rowcount
                if first_sight:
                    rows.extend(_fan_out(spec, message, now))
            db.executemany(
                "INSERT INTO entries (topic, subscription, state, visible_at, enqueued_at,"
                " message_id, subject, correlation_id, content_type, properties, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        for subscription, count in Counter(row[1] for row in rows).items():
            self._ring(topic, subscription, count)

    # ------------------------------------------------------------------ peek-lock

    def receive(
        self, topic: str, subscription: str, max_messages: int = 1
    ) -> list[ReceivedMessage]:
        spec = self._subscription(topic, subscription)
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        now = self._now()
        locked_until = now + spec.lock_duration_seconds * 1_000_000
        with self._transaction(durable=False) as db:
            self._release_due(db, topic, spec, now)
            rows = db.execute(
                f"UPDATE entries SET state = {WAITING}, visible_at = ?,"
                " delivery_count = delivery_count + 1, lock_token = lower(hex(randomblob(16)))"
                " WHERE seq IN (SELECT seq FROM entries"
                f"  WHERE topic = ? AND subscription = ? AND state = {READY} ORDER BY seq LIMIT ?)"
                f" RETURNING {MESSAGE_COLUMNS}",
                (locked_until, topic, subscription, max_messages),
            ).fetchall()
        return sorted(map(message_from_row, rows), key=lambda m: m.sequence_number)

    def complete(self, message: ReceivedMessage) -> None:
        self._subscription(message.topic, message.subscription)
        self._settle(message, f"DELETE FROM entries WHERE {_HELD_LOCK}", ())

    def abandon(self, message: ReceivedMessage) -> None:
        spec = self._subscription(message.topic, message.subscription)
        used_up = f"delivery_count >= {spec.max_delivery_count:d}"
        self._settle(
            message,
            f"UPDATE entries SET lock_token = NULL, visible_at = ?,"
            f" state = CASE WHEN {used_up} THEN {DEAD_LETTERED} ELSE {READY} END,"
            f" dead_letter_reason = CASE WHEN {used_up} THEN ? END,"
            f" dead_letter_description = CASE WHEN {used_up} THEN ? END"
            f" WHERE {_HELD_LOCK}",
            (
                self._now(),
                MAX_DELIVERY_COUNT_EXCEEDED,
                max_delivery_description(spec.max_delivery_count),
            ),
        )
        self._ring(message.topic, message.subscription, 1)

    def renew_lock(self, message: ReceivedMessage) -> datetime:
        spec = self._subscription(message.topic, message.subscription)
        locked_until = self._now() + spec.lock_duration_seconds * 1_000_000
        self._settle(
            message, f"UPDATE entries SET visible_at = ? WHERE {_HELD_LOCK}", (locked_until,)
        )
        return from_micros(locked_until)

    def dead_letter(self, message: ReceivedMessage, reason: str, description: str = "") -> None:
        self._subscription(message.topic, message.subscription)
        self._settle(
            message,
            f"UPDATE entries SET state = {DEAD_LETTERED}, lock_token = NULL, visible_at = ?,"
            f" dead_letter_reason = ?, dead_letter_description = ? WHERE {_HELD_LOCK}",
            (self._now(), reason, description),
        )

    # ------------------------------------------------------------------ embedded extras

    def wait_for_messages(self, topic: str, subscription: str, timeout: float) -> bool:
        """Block until a message may be deliverable (True) or `timeout` seconds pass (False).

        Publishes and abandons in this process wake the waiter at once, and so do those of
        other processes once this one `listen_for_rings`; a scheduled time or a lock expiry
        wakes it when due; a re-check at most every CROSS_PROCESS_POLL_SECONDS finds the rest.
        """
        self._subscription(topic, subscription)
        doorbell = self._doorbells[topic, subscription]
        deadline = time.monotonic() + timeout
        while not self._closed:
            rings = doorbell.rings
            next_due = self._next_due(topic, subscription)
            now = self._now()
            if next_due is not None and next_due <= now:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            pause = min(remaining, CROSS_PROCESS_POLL_SECONDS)
            if next_due is not None:
                pause = min(pause, (next_due - now) / 1_000_000)
            doorbell.wait(pause, unless_rung_since=rings)
        return False

    def complete_all(self, messages: Sequence[ReceivedMessage]) -> list[ReceivedMessage]:
        """Complete many messages in one transaction; returns those whose lock was lost (they
        are left as they are, as `complete` would leave them).

        The local host settles its consumers' finished messages this way: one call per message
        had every consumer thread queue for the bus's one connection.
        """
        for message in messages:
            self._subscription(message.topic, message.subscription)
        if not messages:
            return []
        now = self._now()
        by_seq = {message.sequence_number: message for message in messages}
        with self._transaction(durable=False) as db:
            rows = db.execute(
                "SELECT seq, topic, subscription, state, lock_token, visible_at FROM entries"
                f" WHERE seq IN ({', '.join('?' * len(by_seq))})",
                tuple(by_seq),
            ).fetchall()
            held = [
                seq
                for seq, topic, subscription, state, lock_token, visible_at in rows
                if (topic, subscription, lock_token)
                == (by_seq[seq].topic, by_seq[seq].subscription, by_seq[seq].lock_token)
                and state == WAITING
                and visible_at > now
            ]
            db.execute(f"DELETE FROM entries WHERE seq IN ({', '.join('?' * len(held))})", held)
        completed = set(held)
        return [message for seq, message in by_seq.items() if seq not in completed]

    def dead_letters(
        self, topic: str, subscription: str, limit: int = 100
    ) -> list[ReceivedMessage]:
        """The subscription's dead-letter queue, oldest first."""
        spec = self._subscription(topic, subscription)
        with self._transaction(durable=False) as db:
            self._release_due(db, topic, spec, self._now())
            rows = db.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM entries"
                f" WHERE topic = ? AND subscription = ? AND state = {DEAD_LETTERED}"
                " ORDER BY seq LIMIT ?",
                (topic, subscription, limit),
            ).fetchall()
        return [message_from_row(row) for row in rows]

    def replay_dead_letter(self, topic: str, subscription: str, sequence_number: int) -> None:
        """Send a dead letter back to its subscription as a new message (new sequence number,
        delivery count 0). Duplicate detection does not apply: this is an operator's decision."""
        self._subscription(topic, subscription)
        now = self._now()
        with self._transaction() as db:
            replayed = db.execute(
                "INSERT INTO entries (topic, subscription, state, visible_at, enqueued_at,"
                " message_id, subject, correlation_id, content_type, properties, body)"
                f" SELECT topic, subscription, {READY}, ?, ?, message_id, subject, correlation_id,"
                " content_type, properties, body FROM entries"
                f" WHERE seq = ? AND topic = ? AND subscription = ? AND state = {DEAD_LETTERED}",
                (now, now, sequence_number, topic, subscription),
            ).rowcount
            if not replayed:
                raise DeadLetterNotFound(f"{topic}/{subscription} dead letter {sequence_number}")
            db.execute("DELETE FROM entries WHERE seq = ?", (sequence_number,))
        self._ring(topic, subscription, 1)

    def purge_dead_letter(self, topic: str, subscription: str, sequence_number: int) -> None:
        self._subscription(topic, subscription)
        with self._lock:
            self._set_durable(True)
            purged = self._db.execute(
                "DELETE FROM entries WHERE seq = ? AND topic = ? AND subscription = ?"
                f" AND state = {DEAD_LETTERED}",
                (sequence_number, topic, subscription),
            ).rowcount
        if not purged:
            raise DeadLetterNotFound(f"{topic}/{subscription} dead letter {sequence_number}")

    def active_count(self, topic: str, subscription: str) -> int:
        """Messages deliverable now or locked by a receiver (Service Bus's active count: not
        scheduled ones still in the future, not dead letters)."""
        spec = self._subscription(topic, subscription)
        now = self._now()
        with self._transaction(durable=False) as db:
            self._release_due(db, topic, spec, now)
            (count,) = db.execute(
                "SELECT (SELECT count(*) FROM entries"
                f"   WHERE topic = ? AND subscription = ? AND state = {READY})"
                " + (SELECT count(*) FROM entries"
                f"   WHERE topic = ? AND subscription = ? AND state = {WAITING}"
                "   AND lock_token IS NOT NULL)",
                (topic, subscription, topic, subscription),
            ).fetchone()
        return count

    def listen_for_rings(self) -> None:
        """Wake this process's waiters for messages published by other processes too (they
        must be given the same `rings` path; without one, this does nothing). One process
        listens on a path."""
        if self._rings_path is not None and self._ring_listener is None:
            self._ring_listener = RingListener(self._rings_path, self._ring_from_elsewhere)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()
        if self._ring_listener is not None:
            self._ring_listener.close()
        if self._ring_sender is not None:
            self._ring_sender.close()
        for doorbell in self._doorbells.values():
            doorbell.ring()

    # ------------------------------------------------------------------ internals

    def _ring(self, topic: str, subscription: str, count: int) -> None:
        """Wake up to `count` waiters for new messages, here and in the listening process."""
        self._doorbells[topic, subscription].ring(count)
        if self._ring_sender is not None and self._ring_listener is None:
            self._ring_sender.ring(topic, subscription, count)

    def _ring_from_elsewhere(self, topic: str, subscription: str, count: int) -> None:
        doorbell = self._doorbells.get((topic, subscription))
        if doorbell is not None:
            doorbell.ring(count)

    def _topic(self, topic: str) -> TopicSpec:
        try:
            return self._topics[topic]
        except KeyError:
            raise ValueError(f"unknown topic {topic!r}") from None

    def _subscription(self, topic: str, subscription: str) -> SubscriptionSpec:
        for spec in self._topic(topic).subscriptions:
            if spec.name == subscription:
                return spec
        raise ValueError(f"topic {topic!r} has no subscription {subscription!r}")

    def _now(self) -> int:
        return to_micros(self._clock())

    @contextmanager
    def _transaction(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._set_durable(durable)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _settle(self, message: ReceivedMessage, statement: str, values: tuple) -> None:
        """Run a statement that ends with the _HELD_LOCK predicate; LockLost if it matched none."""
        held = (
            message.sequence_number,
            message.topic,
            message.subscription,
            message.lock_token,
            self._now(),
        )
        with self._lock:
            self._set_durable(False)
            changed = self._db.execute(statement, values + held).rowcount
        if not changed:
            raise LockLost(
                f"{message.topic}/{message.subscription} message {message.sequence_number}:"
                " lock expired or message already settled"
            )

    @staticmethod
    def _release_due(db: sqlite3.Connection, topic: str, spec: SubscriptionSpec, now: int) -> None:
        """Settle what time has decided: expired locks of used-up messages go to the dead-letter
        queue; other expired locks and due scheduled messages become deliverable."""
        db.execute(
            f"UPDATE entries SET state = {DEAD_LETTERED}, lock_token = NULL,"
            " dead_letter_reason = ?, dead_letter_description = ?"
            f" WHERE topic = ? AND subscription = ? AND state = {WAITING} AND visible_at <= ?"
            " AND lock_token IS NOT NULL AND delivery_count >= ?",
            (
                MAX_DELIVERY_COUNT_EXCEEDED,
                max_delivery_description(spec.max_delivery_count),
                topic,
                spec.name,
                now,
                spec.max_delivery_count,
            ),
        )
        db.execute(
            f"UPDATE entries SET state = {READY}, lock_token = NULL"
            f" WHERE topic = ? AND subscription = ? AND state = {WAITING} AND visible_at <= ?",
            (topic, spec.name, now),
        )

    def _next_due(self, topic: str, subscription: str) -> int | None:
        """0 when a message is deliverable now, else when the next one will be (or None)."""
        with self._lock:
            if self._closed:
                return None
            (due,) = self._db.execute(
                "SELECT CASE WHEN EXISTS (SELECT 1 FROM entries"
                f"   WHERE topic = ? AND subscription = ? AND state = {READY}) THEN 0"
                " ELSE (SELECT min(visible_at) FROM entries"
                f"   WHERE topic = ? AND subscription = ? AND state = {WAITING}) END",
                (topic, subscription, topic, subscription),
            ).fetchone()
        return due

    def _set_durable(self, durable: bool) -> None:
        """Switch the commit mode of the next statements (called under the lock)."""
        if durable != self._durable:
            self._db.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            self._durable = durable


class _Doorbell:
    """Wakes this process's threads waiting on one subscription.

    `rings` counts rings so that a waiter that checked the database before a ring does not
    sleep through it. A ring for n new messages wakes at most n waiters: the others would only
    find the messages taken.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.rings = 0

    def ring(self, waiters: int | None = None) -> None:
        """Wake `waiters` waiting threads (all of them when None)."""
        with self._condition:
            self.rings += 1
            if waiters is None:
                self._condition.notify_all()
            else:
                self._condition.notify(waiters)

    def wait(self, timeout: float, unless_rung_since: int) -> None:
        with self._condition:
            if self.rings == unless_rung_since:
                self._condition.wait(timeout)


def _fan_out(spec: TopicSpec, message: OutboundMessage, now: int) -> list[tuple]:
    """One entries row per subscription whose subject filter takes the message."""
    scheduled = (
        to_micros(message.scheduled_enqueue_time)
        if message.scheduled_enqueue_time is not None
        else now
    )
    state = WAITING if scheduled > now else READY
    enqueued_at = max(scheduled, now)
    properties = encode_properties(message.application_properties)
    return [
        (
            spec.name,
            subscription.name,
            state,
            enqueued_at,
            enqueued_at,
            message.message_id,
            message.subject,
            message.correlation_id,
            message.content_type,
            properties,
            message.body,
        )
        for subscription in spec.subscriptions
        if not subscription.subjects or message.subject in subscription.subjects
    ]
