"""`python -m devhost deadletters list|show|replay|purge`: the embedded bus's dead-letter queues.

    deadletters list [--topic T --subscription S] [--json]
    deadletters show SEQ --topic T --subscription S
    deadletters replay (SEQ | --all) --topic T --subscription S
    deadletters purge (SEQ | --all) --topic T --subscription S

It opens the bus file of `--data-dir` directly; the bus is safe across processes, so this works
while the host runs (a replayed message is delivered within the host's cross-process poll).
On Azure the same is done with Service Bus Explorer or the SDK: see docs/resilience.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from devhost.commands.options import add_data_dir
from devhost.embedded.sqlite_bus import BUS_FILE, DeadLetterNotFound, SqliteMessageBus
from shared.ports import ReceivedMessage
from shared.topology import TOPICS

DEFAULT_LIMIT = 1000
_COLUMNS = (
    "topic",
    "subscription",
    "seq",
    "messageId",
    "subject",
    "reason",
    "deliveries",
    "enqueued",
)


def add_to(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "deadletters", help="list, show, replay or purge dead-lettered messages of the embedded bus"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="dead letters of every subscription, or of one")
    _common(listing, subscription_required=False)
    listing.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="per subscription")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(run=_list)

    show = actions.add_parser("show", help="one dead letter in full, body included")
    _common(show, subscription_required=True)
    show.add_argument("sequence_number", type=int, metavar="SEQ")
    show.set_defaults(run=_show)

    for name, verb, run in (
        ("replay", "send back to its subscription as a fresh delivery", _replay),
        ("purge", "delete for good", _purge),
    ):
        action = actions.add_parser(name, help=f"{verb}: one dead letter, or --all")
        _common(action, subscription_required=True)
        which = action.add_mutually_exclusive_group(required=True)
        which.add_argument("sequence_number", type=int, nargs="?", metavar="SEQ")
        which.add_argument("--all", action="store_true", help="every dead letter listed now")
        action.set_defaults(run=run)


def _common(parser: argparse.ArgumentParser, *, subscription_required: bool) -> None:
    add_data_dir(parser, "where the embedded bus lives")
    parser.add_argument("--topic", choices=sorted(TOPICS), required=subscription_required)
    parser.add_argument("--subscription", required=subscription_required)


# ---------------------------------------------------------------------------------- actions


def _list(args: argparse.Namespace) -> int:
    with _bus(args) as bus:
        letters = [
            letter
            for topic, subscription in _subscriptions(args)
            for letter in bus.dead_letters(topic, subscription, limit=args.limit)
        ]
    if args.json:
        for letter in letters:
            print(json.dumps(_summary(letter)))
        return 0
    if not letters:
        print("no dead letters")
        return 0
    rows = [_COLUMNS, *(_row(letter) for letter in letters)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    for letter in letters:
        if letter.dead_letter_error_description:
            print(f"#{letter.sequence_number}: {letter.dead_letter_error_description}")
    return 0


def _show(args: argparse.Namespace) -> int:
    with _bus(args) as bus:
        letter = _find(bus, args.topic, args.subscription, args.sequence_number)
    if letter is None:
        return _not_found(args, args.sequence_number)
    print(json.dumps(_details(letter), indent=2, ensure_ascii=False))
    return 0


def _replay(args: argparse.Namespace) -> int:
    return _settle(args, "replayed", SqliteMessageBus.replay_dead_letter)


def _purge(args: argparse.Namespace) -> int:
    return _settle(args, "purged", SqliteMessageBus.purge_dead_letter)


def _settle(
    args: argparse.Namespace, done: str, settle: Callable[[SqliteMessageBus, str, str, int], None]
) -> int:
    """Replay or purge one dead letter, or every one listed when the command starts (a replayed
    message that fails again is dead-lettered anew and left for the next decision)."""
    with _bus(args) as bus:
        if args.all:
            numbers = [
                letter.sequence_number
                for letter in bus.dead_letters(args.topic, args.subscription, limit=sys.maxsize)
            ]
        else:
            numbers = [args.sequence_number]
        for number in numbers:
            try:
                settle(bus, args.topic, args.subscription, number)
            except DeadLetterNotFound:
                return _not_found(args, number)
            print(f"{done} {args.topic}/{args.subscription} dead letter {number}")
    if args.all:
        print(f"{len(numbers)} dead letters {done}")
    return 0


# ---------------------------------------------------------------------------------- helpers


@contextmanager
def _bus(args: argparse.Namespace) -> Iterator[SqliteMessageBus]:
    if not (args.data_dir / BUS_FILE).exists():
        raise SystemExit(f"no embedded bus in {args.data_dir} (is that the host's --data-dir?)")
    if args.subscription is not None and args.topic is None:
        raise SystemExit("--subscription needs --topic")
    if args.topic is not None and args.subscription is not None:
        names = {spec.name for spec in TOPICS[args.topic].subscriptions}
        if args.subscription not in names:
            raise SystemExit(
                f"topic {args.topic} has no subscription {args.subscription}"
                f" (it has: {', '.join(sorted(names))})"
            )
    bus = SqliteMessageBus(args.data_dir)
    try:
        yield bus
    finally:
        bus.close()


def _subscriptions(args: argparse.Namespace) -> list[tuple[str, str]]:
    topics = [TOPICS[args.topic]] if args.topic else list(TOPICS.values())
    return [
        (topic.name, subscription.name)
        for topic in topics
        for subscription in topic.subscriptions
        if args.subscription in (None, subscription.name)
    ]


def _find(
    bus: SqliteMessageBus, topic: str, subscription: str, sequence_number: int
) -> ReceivedMessage | None:
    letters = bus.dead_letters(topic, subscription, limit=sys.maxsize)
    return next((m for m in letters if m.sequence_number == sequence_number), None)


def _not_found(args: argparse.Namespace, sequence_number: int) -> int:
    print(
        f"no dead letter {sequence_number} in {args.topic}/{args.subscription}",
        file=sys.stderr,
    )
    return 1


def _summary(letter: ReceivedMessage) -> dict[str, Any]:
    return {
        "topic": letter.topic,
        "subscription": letter.subscription,
        "sequenceNumber": letter.sequence_number,
        "messageId": letter.message_id,
        "subject": letter.subject,
        "deadLetterReason": letter.dead_letter_reason,
        "deadLetterErrorDescription": letter.dead_letter_error_description,
        "deliveryCount": letter.delivery_count,
        "enqueuedTime": letter.enqueued_time.isoformat(),
        "deadLetteredAt": letter.locked_until.isoformat(),
    }


def _row(letter: ReceivedMessage) -> tuple[str, ...]:
    return (
        letter.topic,
        letter.subscription,
        str(letter.sequence_number),
        letter.message_id,
        letter.subject,
        letter.dead_letter_reason or "",
        str(letter.delivery_count),
        letter.enqueued_time.isoformat(timespec="seconds"),
    )


def _details(letter: ReceivedMessage) -> dict[str, Any]:
    return {
        **_summary(letter),
        "correlationId": letter.correlation_id,
        "contentType": letter.content_type,
        "applicationProperties": letter.application_properties,
        "body": _body_text(letter.body),
    }


def _body_text(body: bytes) -> Any:
    """The body as JSON when it is JSON, else as text, else as hex (poison comes in all shapes)."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return {"hex": body.hex()}
    try:
        return json.loads(text)
    except ValueError:
        return text
