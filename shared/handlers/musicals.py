"""Show managers register musicals; anyone browses them."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from shared.domain.commands import RegisterMusical
from shared.domain.errors import NotFoundError
from shared.domain.ids import is_musical_id, new_musical_id
from shared.domain.models import CatalogEntry, Musical
from shared.domain.performances import SeatedMusical
from shared.domain.seating_errors import InvalidSeatRequest
from shared.handlers.paging import page_json, query_json_page
from shared.handlers.performances import performance_views
from shared.ports import (
    AsyncDocumentStore,
    Clock,
    Condition,
    Document,
    DocumentStore,
    NotFound,
    OrderBy,
)
from shared.topology import MUSICALS

CATALOG_ORDER = (OrderBy("createdAt"),)
_ENCODE_JSON = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(frozen=True)
class MusicalDeps:
    """What registering a musical needs, built once by shared.bootstrap."""

    store: DocumentStore
    clock: Clock


def register_musical(command: RegisterMusical, deps: MusicalDeps) -> Musical:
    """Create the musical in its own partition, after its catalog line.

    The catalog line goes first: if the second write never happens, the list skips a line whose
    musical does not exist, whereas the other order could leave a musical nobody can find.
    """
    store, now = deps.store, deps.clock.now()
    musical = Musical(
        id=new_musical_id(),
        title=command.title,
        total_seats=command.seats,
        available_seats=command.seats,
        price=command.price,
        venue=command.venue,
        performance_at=command.performance_at,
        max_seats_per_customer=command.max_seats_per_customer,
        created_at=now,
    )
    entry = CatalogEntry(id=musical.id, title=musical.title, created_at=now)
    store.create(MUSICALS.name, entry.to_document())
    return Musical.from_document(store.create(MUSICALS.name, musical.to_document()))


def get_musical(musical_id: str, store: DocumentStore) -> Musical | SeatedMusical:
    if not is_musical_id(musical_id):
        raise NotFoundError(f"no musical {musical_id!r}")
    try:
        return _musical_of(store.read(MUSICALS.name, musical_id, musical_id))
    except NotFound:
        raise NotFoundError(f"no musical {musical_id!r}") from None


def _musical_of(document: dict[str, Any]) -> Musical | SeatedMusical:
    if document.get("type") == SeatedMusical.DOC_TYPE:
        return SeatedMusical.from_document(document)
    return Musical.from_document(document)


async def read_musical(musical_id: str, store: AsyncDocumentStore) -> dict[str, Any]:
    """GET /musicals/{id}: the musical as stored, served without a model (`Musical.served`);
    a seated one with its performances' live counts."""
    document = await _musical_document(musical_id, store)
    if document.get("type") == SeatedMusical.DOC_TYPE:
        seated = SeatedMusical.from_document(document)
        return seated.to_api(await performance_views(seated, store))
    return Musical.served(document)


async def _musical_document(musical_id: str, store: AsyncDocumentStore) -> Document:
    """The musical's stored document; NotFoundError for an id no musical can have, or none."""
    if not is_musical_id(musical_id):
        raise NotFoundError(f"no musical {musical_id!r}")
    try:
        return await store.read_async(MUSICALS.name, musical_id, musical_id)
    except NotFound:
        raise NotFoundError(f"no musical {musical_id!r}") from None


@dataclass(frozen=True)
class CatalogPage:
    items: list[str]  # each a Musical (openapi.yaml), as JSON text
    continuation_token: str | None

    def to_json(self) -> str:
        """The answer of GET /musicals, joined from the items' texts."""
        return page_json(self.items, self.continuation_token)


async def list_musicals(
    store: AsyncDocumentStore, limit: int, continuation: str | None
) -> CatalogPage:
    """One page of the catalog, oldest first, with each musical's live seat count: the page of
    catalog lines (one query), then their musicals read all at once (each lives in its own
    partition, beside its reservations, so that a reservation holds its seats atomically),
    each as the JSON text of its API fields, served as stored (see `Musical.served`; a field
    that an older document lacks comes as null, the default of every field added since).
    A page with seated musicals (their catalog lines say so) is read whole and served through
    the models instead; a seated one lists its performances without counts (they are per
    section)."""
    page = await query_json_page(
        store,
        MUSICALS.name,
        CatalogEntry.PARTITION,
        ("id", "seated"),
        [Condition("type", "=", CatalogEntry.DOC_TYPE)],
        CATALOG_ORDER,
        limit,
        continuation,
    )
    lines = json.loads(f"[{','.join(page.items)}]")  # one decode for the page, not one a line
    keys = [(line["id"], line["id"]) for line in lines]
    # A line whose musical was never written (see register_musical) is skipped.
    if any(line.get("seated") for line in lines):
        documents = await store.read_many_async(MUSICALS.name, keys)
        return CatalogPage([_ENCODE_JSON(_served(d)) for d in documents], page.continuation)
    musicals = await store.read_many_json_async(MUSICALS.name, keys, Musical.served_fields())
    return CatalogPage(musicals, page.continuation)


def _served(document: dict[str, Any]) -> dict[str, Any]:
    if document.get("type") == SeatedMusical.DOC_TYPE:
        return SeatedMusical.from_document(document).to_api()
    return Musical.served(document)


@dataclass(frozen=True)
class MusicalFacts:
    """What a reservation copies from its musical. Immutable once registered (there is no
    endpoint that changes a title or a price), so it may be cached for the process's life."""

    id: str
    title: str
    price: int
    max_seats_per_customer: int | None = None


class MusicalDirectory:
    """Looks up `MusicalFacts`, reading each musical from the store once per process."""

    def __init__(self, store: DocumentStore, capacity: int = 10_000) -> None:
        self._store = store
        self._capacity = capacity
        self._known: dict[str, MusicalFacts] = {}
        self._lock = threading.Lock()

    def facts(self, musical_id: str) -> MusicalFacts:
        known = self._known.get(musical_id)
        if known is not None:
            return known
        return self._remember(get_musical(musical_id, self._store))

    async def facts_async(self, musical_id: str, store: AsyncDocumentStore) -> MusicalFacts:
        """`facts` for an event loop: a miss is read through `store` without blocking it."""
        known = self._known.get(musical_id)
        if known is not None:
            return known
        return self._remember(_musical_of(await _musical_document(musical_id, store)))

    def _remember(self, musical: Musical | SeatedMusical) -> MusicalFacts:
        if isinstance(musical, SeatedMusical):
            raise InvalidSeatRequest(
                f"musical {musical.id} is seated: reserve seats of one of its performances "
                "(performanceId with seatIds, or with grade and seats)"
            )
        facts = MusicalFacts(
            musical.id, musical.title, musical.price, musical.max_seats_per_customer
        )
        with self._lock:
            if len(self._known) >= self._capacity:
                self._known.clear()
            self._known[musical.id] = facts
        return facts
