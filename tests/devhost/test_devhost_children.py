"""devhost's child processes: started in order, started again when they die, and gone with
their parent however it ends."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devhost import children
from devhost.children import Children, ChildSpec
from tests.support.devhost_process import PROJECT_ROOT
from tests.support.eventually import eventually
from tests.support.processes import alive

CHILD = "tests.support.child_process"


def started_pids(starts: Path) -> list[int]:
    return [int(line) for line in starts.read_text().split()] if starts.exists() else []


def test_a_child_that_exits_is_started_again_and_stopped_with_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(children, "RESTART_BACKOFF_SECONDS", (0.1,))
    steady, flaky = tmp_path / "steady", tmp_path / "flaky"
    running = Children(
        [
            ChildSpec("steady", CHILD, ("--starts", str(steady))),
            ChildSpec("flaky", CHILD, ("--starts", str(flaky), "--exit-code", "3")),
        ]
    )
    running.start()
    try:
        eventually(lambda: len(started_pids(flaky)) == 2, timeout=10)
    finally:
        running.stop()

    assert len(started_pids(steady)) == 1
    assert not any(alive(pid) for pid in started_pids(steady) + started_pids(flaky))


def test_children_end_with_their_parent_even_when_it_is_killed(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time
                from devhost.children import Children, ChildSpec
                Children([ChildSpec("child", {CHILD!r}, ("--starts", {str(starts)!r}))]).start()
                time.sleep(60)
                """
            ),
        ],
        cwd=PROJECT_ROOT,
    )
    try:
        (child,) = eventually(lambda: started_pids(starts), timeout=10)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)

        eventually(lambda: not alive(child), timeout=10, what="the orphaned child")
    finally:
        parent.kill()
