from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from devhost.invocation import Invoker


@pytest.fixture
def invoker() -> Iterator[Invoker]:
    """An Invoker whose event loop runs in a background thread, as the host's does."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield Invoker(loop, thread_count=4)
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()
