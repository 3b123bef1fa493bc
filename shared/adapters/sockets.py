"""Kept-alive connections: telling, before reuse, whether the other side closed one."""

from __future__ import annotations

import select
from typing import Protocol


class Selectable(Protocol):
    """A connection `select` can watch: a socket, TLS or not."""

    def fileno(self) -> int: ...


def closed_while_idle(connection: Selectable) -> bool:
    """True if an idle connection (no request outstanding) is readable: its peer closed it, or
    sent something unasked; either way it must not carry the next request. Checked before
    sending, this tells "never sent" apart from "sent, then cut off". Works for TLS sockets."""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
    except (OSError, ValueError):  # closed on this side already
        return True
    return bool(readable)
