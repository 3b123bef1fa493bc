"""devhost's trigger host: Service Bus or Cosmos DB triggers (or both), in a process of their
own.

    python -m devhost.trigger_host --app APP [--triggers KIND ...] [--shutdown-grace S]
        [--nice N] [--lifeline FD]

The same DevHost as the HTTP host's, without an HTTP server, over the app's own services: its
store is a client of the store service (`OUTERPARK_STORE_SOCKET`), its bus the embedded one. A
host of Service Bus triggers listens for the rings of the other processes that publish to the
bus (`OUTERPARK_BUS_RINGS`). It runs `--nice` steps below the HTTP host's CPU priority: while
requests keep the machine busy they come first, and the triggers catch up after.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from devhost.app_loader import DEFAULT_APP
from devhost.metadata import BACKGROUND_TRIGGERS

DEFAULT_NICENESS = 10


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost.trigger_host")
    parser.add_argument("--app", default=DEFAULT_APP)
    parser.add_argument(
        "--triggers",
        nargs="+",
        choices=sorted(BACKGROUND_TRIGGERS),
        default=sorted(BACKGROUND_TRIGGERS),
        help="the kinds of trigger to drive (default: all)",
    )
    parser.add_argument("--shutdown-grace", type=float, default=10.0)
    parser.add_argument("--nice", type=int, default=DEFAULT_NICENESS)
    parser.add_argument("--lifeline", type=int, help="a pipe whose end means: stop")
    args = parser.parse_args(argv)
    os.nice(args.nice)

    from devhost.log_setup import configure_host_logging

    configure_host_logging("triggers")
    from devhost.commands.serve import TRIGGER_HOSTS
    from devhost.embedded.backends import EmbeddedSettings
    from devhost.span_log import record_spans

    process = next(
        (name for name, kinds in TRIGGER_HOSTS.items() if args.triggers == list(kinds)), "triggers"
    )
    record_spans(EmbeddedSettings().data_dir.resolve(), process)

    import uvloop

    from devhost.app_loader import load_app
    from devhost.host import DevHost, exit_now_if_functions_still_run
    from devhost.lifeline import watch_lifeline
    from devhost.services import close_services, host_services

    loaded = load_app(args.app)
    services = host_services()
    host = DevHost(
        loaded,
        services,
        listen=None,
        triggers=frozenset(args.triggers),
        shutdown_grace_seconds=args.shutdown_grace,
    )
    if args.lifeline is not None:
        # The parent is gone (killed, perhaps): go as it went. Locked messages and unsaved
        # checkpoints are delivered again, as after any crash.
        watch_lifeline(args.lifeline, lambda: os._exit(1))
    try:
        uvloop.run(host.serve())
    finally:
        close_services(services)
    exit_now_if_functions_still_run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
