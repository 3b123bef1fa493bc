"""Storage layout of the embedded message bus, and the mapping between rows and messages.

One row of `entries` is one message in one subscription (a topic's fan-out writes one row per
matching subscription). Its `state` says where it is:

- READY (0): deliverable now.
- WAITING (1): scheduled for later (no lock token) or locked by a receiver until `visible_at`.
  Once `visible_at` has passed it is released on the next receive: back to READY, or to
  DEAD_LETTERED when it has used up its deliveries.
- DEAD_LETTERED (2): in the subscription's dead-letter queue; `visible_at` records when.

Each state has its own partial index, so a receive touches only deliverable rows however many
messages are scheduled, locked or dead. Times are integer microseconds since the epoch (UTC).
`sent_ids` remembers each topic's message ids for its duplicate-detection window.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from shared.ports import JsonScalar, ReceivedMessage

READY = 0
WAITING = 1
DEAD_LETTERED = 2

SCHEMA = f"""
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    subscription TEXT NOT NULL,
    state INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    lock_token TEXT,
    delivery_count INTEGER NOT NULL DEFAULT 0,
    enqueued_at INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    correlation_id TEXT,
    content_type TEXT NOT NULL,
    properties TEXT NOT NULL,
    body BLOB NOT NULL,
    dead_letter_reason TEXT,
    dead_letter_description TEXT
);
CREATE INDEX IF NOT EXISTS entries_ready
    ON entries (topic, subscription, seq) WHERE state = {READY};
CREATE INDEX IF NOT EXISTS entries_waiting
    ON entries (topic, subscription, visible_at) WHERE state = {WAITING};
CREATE INDEX IF NOT EXISTS entries_dead
    ON entries (topic, subscription, seq) WHERE state = {DEAD_LETTERED};
CREATE TABLE IF NOT EXISTS sent_ids (
    topic TEXT NOT NULL,
    message_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (topic, message_id)
) WITHOUT ROWID;
COMMIT;
"""

# The columns every SELECT or RETURNING that builds a ReceivedMessage lists, in this order.
MESSAGE_COLUMNS = (
    "seq, topic, subscription, visible_at, lock_token, delivery_count, enqueued_at, message_id, "
    "subject, correlation_id, content_type, properties, body, dead_letter_reason, "
    "dead_letter_description"
)

MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"


def max_delivery_description(max_delivery_count: int) -> str:
    """The dead-letter description Service Bus writes, with the same wording."""
    return f"Message could not be consumed after {max_delivery_count} delivery attempts."


def to_micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: the bus needs timezone-aware UTC times")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    seconds, rest = divmod(micros, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest)


def encode_properties(properties: dict[str, JsonScalar]) -> str:
    return json.dumps(properties, separators=(",", ":"), allow_nan=False)


def message_from_row(row: tuple) -> ReceivedMessage:
    """Build a ReceivedMessage from a row of MESSAGE_COLUMNS.

    For a dead letter, `lock_token` is empty and `locked_until` is when it was dead-lettered.
    """
    (
        seq,
        topic,
        subscription,
        visible_at,
        lock_token,
        delivery_count,
        enqueued_at,
        message_id,
        subject,
        correlation_id,
        content_type,
        properties,
        body,
        dead_letter_reason,
        dead_letter_description,
    ) = row
    return ReceivedMessage(
        body=bytes(body),
        message_id=message_id,
        subject=subject,
        correlation_id=correlation_id,
        content_type=content_type,
        application_properties=json.loads(properties),
        delivery_count=delivery_count,
        sequence_number=seq,
        enqueued_time=from_micros(enqueued_at),
        lock_token=lock_token or "",
        locked_until=from_micros(visible_at),
        topic=topic,
        subscription=subscription,
        dead_letter_reason=dead_letter_reason,
        dead_letter_error_description=dead_letter_description,
    )
