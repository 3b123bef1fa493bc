"""`python -m devhost trace ID [--data-dir DIR]`: every step a reservation's saga took so far.

ID is a reservation id or a correlation id. Prints each trace that touched it as an indented
tree, one line per step (span) with its process, start, duration and outcome; exits 1 when
nothing recorded in the data dir knows that id.
"""

from __future__ import annotations

import argparse
import sys

from devhost.commands.options import add_data_dir


def add_to(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "trace", help="print every step a reservation's saga took, as recorded by the host"
    )
    parser.add_argument("id", help="a reservation id or a correlation id")
    add_data_dir(parser, "where the host recorded its spans")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from devhost.trace_view import load_spans, render, traces_of

    traces = traces_of(load_spans(args.data_dir), args.id)
    if not traces:
        print(f"nothing is known of {args.id} in {args.data_dir}", file=sys.stderr)
        return 1
    for trace_spans in traces:
        for line in render(trace_spans):
            print(line)
    return 0
