"""`python -m devhost [COMMAND]`: `serve` (the default), `token`, `rebuild-history`,
`deadletters` and `trace`.
A new command is a module in `devhost/commands/` with `add_to(subparsers)`, listed in COMMANDS."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from devhost.commands import deadletters, rebuild_history, serve, token, trace

COMMANDS = (serve, token, rebuild_history, deadletters, trace)
DEFAULT_COMMAND = "serve"
# Said explicitly to the app (shared.settings.Settings.local_dev) and inherited by every
# process the host starts: only the local host may use local HS256 tokens (docs/security.md).
LOCAL_DEV_FLAG = "OUTERPARK_LOCAL_DEV"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devhost", description="The local Azure Functions host of OuterPark."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_to(subparsers)
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in {*subparsers.choices, "-h", "--help"}:
        arguments.insert(0, DEFAULT_COMMAND)
    args = parser.parse_args(arguments)
    os.environ[LOCAL_DEV_FLAG] = "1"
    return args.run(args)
