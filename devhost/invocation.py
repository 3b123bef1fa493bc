"""Calling user functions the way the Python worker does.

Sync functions run in a bounded thread pool (the worker's `PYTHON_THREADPOOL_THREAD_COUNT`,
default min(32, cpu + 4)); async ones run on the host's event loop. Trigger loops call from
their own threads: sync functions run right there, async ones are handed to the loop.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from devhost.metadata import FunctionSpec


def default_thread_count() -> int:
    configured = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT")
    if configured:
        return max(1, int(configured))
    return min(32, (os.cpu_count() or 1) + 4)


class Invoker:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        thread_count: int | None = None,
    ) -> None:
        self._loop = loop
        self._pool = ThreadPoolExecutor(
            max_workers=thread_count or default_thread_count(), thread_name_prefix="function"
        )

    async def call(self, spec: FunctionSpec, payload: Any) -> Any:
        """From the event loop: run the function with its trigger payload, return its result."""
        arguments = {spec.trigger_arg: payload}
        if spec.is_async:
            return await spec.function(**arguments)
        return await self._loop.run_in_executor(self._pool, lambda: spec.function(**arguments))

    def call_from_thread(self, spec: FunctionSpec, payload: Any) -> Any:
        """From a trigger's worker thread: blocks until the function returns (or raises)."""
        arguments = {spec.trigger_arg: payload}
        if spec.is_async:
            coroutine = spec.function(**arguments)
            return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()
        return spec.function(**arguments)

    def shutdown(self) -> None:
        """Stop taking work; running calls finish in their threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)
