"""`python -m devhost rebuild-history [--data-dir DIR]`: rebuild the customer-center view.

Deletes the view's documents and the history functions' checkpoints, then replays the
musicals, payments and notices change feeds from the beginning through the projection the
triggers run. Stop the host on that data dir first: its trigger loops keep their own position.
"""

from __future__ import annotations

import argparse

from devhost.commands.options import add_data_dir
from devhost.embedded.sqlite_store import SqliteDocumentStore
from shared.projection.rebuild import rebuild_history


def add_to(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rebuild-history",
        help="empty the history view and rebuild it by replaying the change feeds (host stopped)",
    )
    add_data_dir(parser, "the embedded store to rebuild")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    store = SqliteDocumentStore(args.data_dir)
    try:
        report = rebuild_history(store)
    finally:
        store.close()
    replayed = ", ".join(f"{count} {name}" for name, count in report.replayed.items())
    print(
        f"history rebuilt in {args.data_dir}: {report.deleted} old items deleted, "
        f"changes replayed: {replayed}; {report.item_writes} item writes"
    )
    return 0
