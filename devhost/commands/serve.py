"""`python -m devhost [serve] [--host H] [--port P] [--data-dir DIR] [--app MODULE[:ATTR]]`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from typing import TYPE_CHECKING

from devhost.app_loader import DEFAULT_APP
from devhost.commands.options import add_data_dir
from devhost.priority import DEFAULT_BUSY_LIMIT

if TYPE_CHECKING:
    from devhost.gateway_simulator import RunningSimulator

log = logging.getLogger("devhost")


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
        "--background-when-busy",
        type=int,
        default=DEFAULT_BUSY_LIMIT,
        help="trigger invocations allowed at once while HTTP requests are in flight "
        f"({DEFAULT_BUSY_LIMIT}; unlimited when HTTP is idle)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # The app's settings are read from the environment on first use: set them before the
    # app (or anything reading settings) is imported.
    os.environ["OUTERPARK_DATA_DIR"] = str(args.data_dir.resolve())
    from devhost.log_setup import configure_host_logging

    configure_host_logging()
    _warn_on_development_secret()
    simulator = _start_gateway_simulator_if_needed()

    import uvloop

    from devhost.app_loader import load_app
    from devhost.host import DevHost, Listen
    from devhost.services import close_services, host_services

    loaded = load_app(args.app)
    services = host_services()
    listen = Listen(args.host, args.port, args.shutdown_grace)
    host = DevHost(loaded, services, listen, args.background_when_busy)
    try:
        uvloop.run(host.serve())
    finally:
        close_services(services)
        if simulator is not None:
            simulator.stop()
    _exit_now_if_functions_still_run()
    return 0


def _exit_now_if_functions_still_run(patience_seconds: float = 1.0) -> None:
    """Python joins thread-pool threads at exit, so one hung function call would keep the host
    from ever exiting. Its message was abandoned and its batch left unacknowledged (both come
    again after a restart): leave without waiting for it."""
    deadline = time.monotonic() + patience_seconds
    for thread in threading.enumerate():
        if not thread.daemon and thread is not threading.main_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
    lingering = [
        thread.name
        for thread in threading.enumerate()
        if thread.is_alive() and not thread.daemon and thread is not threading.main_thread()
    ]
    if lingering:
        log.warning("exiting with function calls still running in %s", lingering)
        logging.shutdown()
        sys.stdout.flush()
        os._exit(0)


def _warn_on_development_secret() -> None:
    if not os.environ.get("OUTERPARK_JWT_SECRET"):
        from shared.settings import DEV_JWT_SECRET

        log.warning(
            "OUTERPARK_JWT_SECRET is not set: tokens are signed with the development secret %r",
            DEV_JWT_SECRET,
            extra={"jwtSecret": DEV_JWT_SECRET},
        )


def _start_gateway_simulator_if_needed() -> RunningSimulator | None:
    if os.environ.get("PAYMENT_GATEWAY_URL"):
        return None
    from devhost.gateway_simulator import start_simulator

    simulator = start_simulator()
    os.environ["PAYMENT_GATEWAY_URL"] = simulator.url
    log.info("payment gateway simulator at %s", simulator.url, extra={"url": simulator.url})
    sys.stdout.flush()
    return simulator
