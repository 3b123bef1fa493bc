"""The async history projection, called from synchronous test code (each call in its own loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from shared.ports import AsyncDocumentStore
from shared.projection.apply import project_changes


def project(documents: Iterable[Mapping[str, Any]], store: AsyncDocumentStore) -> int:
    return asyncio.run(project_changes(documents, store))
