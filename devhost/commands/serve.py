"""`python -m devhost [serve] [--host H] [--port P] [--data-dir DIR] [--app MODULE[:ATTR]]`."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import tempfile
from pathlib import Path

from devhost.app_loader import DEFAULT_APP
from devhost.children import ChildSpec
from devhost.commands.options import add_data_dir
from devhost.embedded.backends import LOCAL_BACKENDS
from devhost.metadata import COSMOS_TRIGGER, SERVICE_BUS_TRIGGER, TIMER_TRIGGER
from devhost.trigger_host import DEFAULT_NICENESS

log = logging.getLogger("devhost")
# The trigger hosts, by child name. The Service Bus subscriptions and the change feeds (the
# outbox relays, the projections) have a process each: one process, one GIL, held the saga's
# drain to one core (measured: ~170 sagas/s in one, ~215 in two; bench.reservations). The
# timers (a few invocations a minute) share the first.
TRIGGER_HOSTS = {
    "bus-triggers": (SERVICE_BUS_TRIGGER, TIMER_TRIGGER),
    "feed-triggers": (COSMOS_TRIGGER,),
}


def add_to(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve every function of the app (the default command)"
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("OUTERPARK_HOST", "127.0.0.1"),
        help="interface to listen on (OUTERPARK_HOST, default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("OUTERPARK_PORT", "7071")),
        help="port to listen on (OUTERPARK_PORT, default 7071)",
    )
    add_data_dir(parser, "where the embedded store and bus live")
    parser.add_argument(
        "--app",
        default=DEFAULT_APP,
        help="the FunctionApp: a module or a .py file, optionally :attribute (function_app)",
    )
    parser.add_argument(
        "--shutdown-grace",
        type=float,
        default=10.0,
        help="seconds running invocations get to finish at shutdown (10)",
    )
    parser.add_argument(
        "--background-nice",
        type=int,
        default=DEFAULT_NICENESS,
        help="how many steps below the HTTP host's CPU priority the trigger hosts run "
        f"({DEFAULT_NICENESS}; 0 for the same)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The store service, the gateway simulator (unless PAYMENT_GATEWAY_URL is set) and the
    trigger hosts as child processes, then the HTTP host here until SIGTERM/SIGINT."""
    data_dir = args.data_dir.resolve()
    # The app's settings are read from the environment on first use, here and in the children:
    # set them before anything reads settings.
    os.environ["OUTERPARK_DATA_DIR"] = str(data_dir)
    os.environ["OUTERPARK_LOCAL_BACKENDS"] = LOCAL_BACKENDS
    from devhost.log_setup import configure_host_logging

    configure_host_logging("http")
    from devhost.span_log import record_spans

    record_spans(data_dir, "http")
    _warn_on_development_secret()

    import uvloop

    from devhost.app_loader import load_app
    from devhost.children import Children
    from devhost.host import DevHost, Listen, exit_now_if_functions_still_run
    from devhost.services import close_services, host_services

    with tempfile.TemporaryDirectory(prefix="outerpark-") as runtime_dir:
        store_socket = Path(runtime_dir) / "store.sock"
        os.environ["OUTERPARK_STORE_SOCKET"] = str(store_socket)
        os.environ["OUTERPARK_BUS_RINGS"] = str(Path(runtime_dir) / "bus-rings.sock")
        gateway = None if os.environ.get("PAYMENT_GATEWAY_URL") else _gateway_listener()
        children = Children(_child_specs(args, data_dir, store_socket, gateway))
        children.start()
        loaded = load_app(args.app)
        services = host_services()
        host = DevHost(
            loaded,
            services,
            Listen(args.host, args.port),
            triggers=frozenset(),
            shutdown_grace_seconds=args.shutdown_grace,
        )
        try:
            uvloop.run(host.serve())
        finally:
            close_services(services)
            children.stop()
    exit_now_if_functions_still_run()
    return 0


def _gateway_listener() -> socket.socket:
    """The simulator's socket, bound here so that its address is known before it starts (and
    stays the same when it is started again)."""
    from devhost.gateway_simulator import listening_socket, url_of

    listener = listening_socket()
    os.environ["PAYMENT_GATEWAY_URL"] = url_of(listener)
    log.info("payment gateway simulator at %s", url_of(listener), extra={"url": url_of(listener)})
    return listener


def _child_specs(
    args: argparse.Namespace,
    data_dir: Path,
    store_socket: Path,
    gateway: socket.socket | None,
) -> list[ChildSpec]:
    store = ChildSpec(
        "store",
        "devhost.store_service",
        ("--data-dir", str(data_dir), "--socket", str(store_socket)),
        ready=lambda: _accepts(store_socket),
    )
    triggers = [
        ChildSpec(
            name,
            "devhost.trigger_host",
            (
                "--app",
                args.app,
                "--triggers",
                *kinds,
                "--shutdown-grace",
                str(args.shutdown_grace),
                "--nice",
                str(args.background_nice),
            ),
            env={"OUTERPARK_STORE_PRIORITY": "low"},
            stop_timeout_seconds=args.shutdown_grace + 5,
        )
        for name, kinds in TRIGGER_HOSTS.items()
    ]
    if gateway is None:
        return [store, *triggers]
    simulator = ChildSpec(
        "gateway",
        "devhost.gateway_simulator",
        ("--fd", str(gateway.fileno())),
        pass_fds=(gateway.fileno(),),
    )
    return [store, simulator, *triggers]


def _accepts(socket_path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(socket_path))
        except OSError:
            return False
    return True


def _warn_on_development_secret() -> None:
    if not os.environ.get("OUTERPARK_JWT_SECRET"):
        from shared.settings import DEV_JWT_SECRET

        log.warning(
            "OUTERPARK_JWT_SECRET is not set: tokens are signed with the development secret %r",
            DEV_JWT_SECRET,
            extra={"jwtSecret": DEV_JWT_SECRET},
        )
