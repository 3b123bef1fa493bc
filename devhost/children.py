"""The processes `python -m devhost` runs beside its HTTP host, and keeps running.

- `store` (`devhost.store_service`): the one writer of the embedded store. The hosts are its
  clients, as functions are Cosmos DB's.
- `gateway` (`devhost.gateway_simulator`), when `PAYMENT_GATEWAY_URL` is unset: it stands for a
  system outside.
- `bus-triggers` and `feed-triggers` (`devhost.trigger_host`): the Service Bus triggers and the
  Cosmos DB triggers. In Azure, background triggers and HTTP scale on instances of their own.
  Here the trigger hosts run at a lower CPU priority: requests come first, and background work
  takes what they leave.

Each child holds the lifeline (it stops when this process ends, however it ends) and starts in a
session of its own (a Ctrl-C in the terminal reaches this process only, which stops the children
in order). A child that exits on its own is started again after a backoff (self-healing).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from devhost.lifeline import Lifeline

log = logging.getLogger("devhost.children")

RESTART_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
HEALTHY_AFTER_SECONDS = 30.0
READY_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class ChildSpec:
    name: str
    module: str
    args: Sequence[str] = ()
    ready: Callable[[], bool] = lambda: True
    """True once the child serves: the next child starts only then."""
    pass_fds: tuple[int, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    stop_timeout_seconds: float = 15.0


class Child:
    """One supervised child process."""

    def __init__(self, spec: ChildSpec, lifeline: Lifeline) -> None:
        self.spec = spec
        self._lifeline = lifeline
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # a stop and a restart never cross
        self._restarts = 0
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"supervise-{spec.name}", daemon=True
        )

    def start(self) -> None:
        """Start it and wait until it is ready; then keep it running until `stop`."""
        self._launch()
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not self.spec.ready():
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"devhost's {self.spec.name} process exited at start")
            if time.monotonic() > deadline:
                raise RuntimeError(f"devhost's {self.spec.name} process did not get ready")
            time.sleep(0.02)
        self._supervisor.start()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within the spec's timeout."""
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(self.spec.stop_timeout_seconds)
        except subprocess.TimeoutExpired:
            log.warning("devhost's %s process did not stop in time: killed", self.spec.name)
            process.kill()
            process.wait()

    def _launch(self) -> None:
        spec = self.spec
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                spec.module,
                *spec.args,
                "--lifeline",
                str(self._lifeline.child_end),
            ],
            env={**os.environ, **spec.env},
            pass_fds=(self._lifeline.child_end, *spec.pass_fds),
            start_new_session=True,
        )
        log.info(
            "started devhost's %s process (pid %d)",
            spec.name,
            self._process.pid,
            extra={"child": spec.name, "pid": self._process.pid},
        )

    def _supervise(self) -> None:
        while True:
            assert self._process is not None
            started = time.monotonic()
            code = self._process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > HEALTHY_AFTER_SECONDS:
                self._restarts = 0
            delay = RESTART_BACKOFF_SECONDS[min(self._restarts, len(RESTART_BACKOFF_SECONDS) - 1)]
            log.error(
                "devhost's %s process exited (code %s); starting it again in %.1f s",
                self.spec.name,
                code,
                delay,
                extra={"child": self.spec.name, "exitCode": code},
            )
            if self._stopping.wait(delay):
                return
            self._restarts += 1
            with self._lock:
                if self._stopping.is_set():
                    return
                self._launch()


class Children:
    """Start in order, stop in the reverse order."""

    def __init__(self, specs: Sequence[ChildSpec]) -> None:
        self._lifeline = Lifeline()
        self._children = [Child(spec, self._lifeline) for spec in specs]

    def start(self) -> None:
        for child in self._children:
            child.start()

    def stop(self) -> None:
        for child in reversed(self._children):
            child.stop()
