"""A child process ends with its parent, however the parent ended (even SIGKILL).

The parent holds the write end of a pipe and never writes to it; the child blocks reading the
other end, which returns end-of-file once no process holds the write end any more, that is
once the parent is gone. Portable where PR_SET_PDEATHSIG is Linux-only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable


class Lifeline:
    """The parent's side: `child_end` is passed to each child (`pass_fds`); the write end is
    not inheritable, so only this process holds it, until it exits."""

    def __init__(self) -> None:
        self.child_end, self._parent_end = os.pipe()


def watch_lifeline(fd: int, on_parent_gone: Callable[[], None]) -> None:
    """In the child: call `on_parent_gone` (once, from a daemon thread) when the parent exits."""

    def wait() -> None:
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while pipe.read(1):
                pass
        on_parent_gone()

    threading.Thread(target=wait, name="lifeline", daemon=True).start()
