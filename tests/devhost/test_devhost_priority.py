from __future__ import annotations

import threading
import time
from contextlib import ExitStack

import pytest

from devhost.priority import HttpFirstGate
from tests.support.eventually import eventually


class Background:
    """Threads that each hold a background slot until released."""

    def __init__(self, gate: HttpFirstGate, count: int) -> None:
        self.running = 0
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(gate,)) for _ in range(count)]
        for thread in self._threads:
            thread.start()

    def _run(self, gate: HttpFirstGate) -> None:
        with gate.background():
            with self._lock:
                self.running += 1
            self.release.wait(10)

    def finish(self) -> None:
        self.release.set()
        for thread in self._threads:
            thread.join()


def test_while_http_is_idle_background_invocations_run_side_by_side() -> None:
    background = Background(HttpFirstGate(busy_limit=1), count=3)

    eventually(lambda: background.running == 3)
    background.finish()


def test_while_a_request_is_in_flight_only_the_busy_limit_of_them_start() -> None:
    gate = HttpFirstGate(busy_limit=1, quiet_seconds=0.05)
    gate.http_started()
    background = Background(gate, count=3)

    eventually(lambda: background.running == 1)
    with ExitStack() as cleanup:
        cleanup.callback(background.finish)
        time.sleep(0.3)
        assert background.running == 1
        gate.http_finished()
        eventually(lambda: background.running == 3)


def test_a_busy_limit_below_one_is_refused_so_background_work_cannot_starve() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        HttpFirstGate(busy_limit=0)
