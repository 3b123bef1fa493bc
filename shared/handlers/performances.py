"""Seated musicals: registering one with its performances, and reading a performance's seats.

A performance's totals are not stored anywhere: they are the sums of its sections' counters,
each in its own partition (see shared.domain.performances and docs/seating.md).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.domain.errors import NotFoundError
from shared.domain.ids import (
    is_performance_id,
    new_musical_id,
    new_performance_id,
    section_partition,
)
from shared.domain.models import CatalogEntry
from shared.domain.performances import (
    COUNTER_ID,
    Performance,
    PerformanceSlot,
    PerformanceView,
    SeatedMusical,
    SectionCounter,
)
from shared.domain.seating import HeldSeats, SeatMap, Section
from shared.domain.seating_commands import RegisterSeatedMusical
from shared.domain.seating_errors import InvalidSeatRequest
from shared.handlers.seat_book import SeatBook
from shared.ports import AsyncDocumentStore, DocumentStore, NotFound
from shared.topology import MUSICALS, PERFORMANCES

_LISTINGS_KEPT = 1_000  # sections' listings kept per process (~40 KB each)
_ENCODE_JSON = json.JSONEncoder(separators=(",", ":")).encode

if TYPE_CHECKING:  # shared.handlers.musicals reads performances' counts: no import cycle
    from shared.handlers.musicals import MusicalDeps

# Registration writes one counter per (performance, section), each in its own partition:
# up to 200 x 50 of them, written this many at a time.
_PARALLEL_WRITES = 8


def register_seated_musical(command: RegisterSeatedMusical, deps: MusicalDeps) -> dict[str, Any]:
    """Create the catalog line, every performance and its section counters, then the musical.

    In that order: a crash part-way leaves performances nobody can reach (the musical, which
    lists them, is written last) rather than a musical whose performances are missing.
    Returns the API form (openapi.yaml): every performance with all its seats free.
    """
    store, now = deps.store, deps.clock.now()
    past = command.past(now)
    if past:
        raise InvalidSeatRequest(
            "performances must lie in the future: " + ", ".join(p.isoformat() for p in past)
        )
    seat_map = command.seat_map
    musical_id = new_musical_id()
    performances = [
        Performance(
            id=new_performance_id(),
            musical_id=musical_id,
            musical_title=command.title,
            starts_at=starts_at,
            seat_map=seat_map,
            max_seats_per_customer=command.max_seats_per_customer,
            created_at=now,
        )
        for starts_at in command.performances
    ]
    musical = SeatedMusical(
        id=musical_id,
        title=command.title,
        total_seats=seat_map.total_seats,
        venue=command.venue,
        grades=command.grades,
        sections=[section.to_json_dict() for section in command.sections],
        performances=[PerformanceSlot(id=p.id, starts_at=p.starts_at) for p in performances],
        max_seats_per_customer=command.max_seats_per_customer,
        created_at=now,
    )
    store.create(
        MUSICALS.name,
        CatalogEntry(id=musical_id, title=command.title, created_at=now, seated=True).to_document(),
    )
    documents = [p.to_document() for p in performances] + [
        _fresh_counter(p.id, section).to_document()
        for p in performances
        for section in seat_map.sections
    ]
    with ThreadPoolExecutor(_PARALLEL_WRITES) as pool:
        list(pool.map(lambda document: store.create(PERFORMANCES.name, document), documents))
    stored = SeatedMusical.from_document(store.create(MUSICALS.name, musical.to_document()))
    all_free = {(p.id, s.id): s.total_seats for p in performances for s in seat_map.sections}
    views = [_view(p.id, musical_id, p.starts_at, seat_map, all_free) for p in performances]
    return stored.to_api(views)


def _fresh_counter(performance_id: str, section: Section) -> SectionCounter:
    return SectionCounter(
        performance_id=performance_id,
        section_id=section.id,
        total_seats=section.total_seats,
        available_seats=section.total_seats,
    )


class PerformanceDirectory:
    """Performances by id, read from the store once per process: they never change. `seats`
    is what the process knows of their sections' held seats (best available)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._known: dict[str, Performance] = {}
        self._lock = threading.Lock()
        self.seats = SeatBook()
        # Each section's listing as last written, with the held seats it was written from.
        self.listings: dict[str, tuple[HeldSeats, str]] = {}

    def get(self, performance_id: str, store: DocumentStore) -> Performance:
        known = self._known.get(performance_id)
        if known is not None:
            return known
        _check_id(performance_id)
        try:
            document = store.read(PERFORMANCES.name, performance_id, performance_id)
        except NotFound:
            raise NotFoundError(f"no performance {performance_id!r}") from None
        return self._remember(document)

    async def get_async(self, performance_id: str, store: AsyncDocumentStore) -> Performance:
        known = self._known.get(performance_id)
        if known is not None:
            return known
        _check_id(performance_id)
        try:
            document = await store.read_async(PERFORMANCES.name, performance_id, performance_id)
        except NotFound:
            raise NotFoundError(f"no performance {performance_id!r}") from None
        return self._remember(document)

    def _remember(self, document: dict[str, Any]) -> Performance:
        if document.get("type") != Performance.DOC_TYPE:
            raise NotFoundError(f"no performance {document.get('id')!r}")
        performance = Performance.from_document(document)
        with self._lock:
            if len(self._known) >= self._capacity:
                self._known.clear()
            self._known[performance.id] = performance
        return performance


def _check_id(performance_id: str) -> None:
    if not is_performance_id(performance_id):
        raise NotFoundError(f"no performance {performance_id!r}")


async def _available(
    performance_ids: Sequence[str], section_ids: Sequence[str], store: AsyncDocumentStore
) -> dict[tuple[str, str], int]:
    """Each (performance, section)'s free seats, read from the section counters all at once."""
    keys = [
        (section_partition(performance_id, section_id), COUNTER_ID)
        for performance_id in performance_ids
        for section_id in section_ids
    ]
    counters = await store.read_many_async(PERFORMANCES.name, keys)
    return {
        (counter["performanceId"], counter["sectionId"]): counter["availableSeats"]
        for counter in counters
    }


def _view(
    performance_id: str,
    musical_id: str,
    starts_at: datetime,
    seat_map: SeatMap,
    available: dict[tuple[str, str], int],
) -> PerformanceView:
    by_section = {s.id: available.get((performance_id, s.id), 0) for s in seat_map.sections}
    by_grade = dict.fromkeys(seat_map.grades, 0)
    for section in seat_map.sections:
        by_grade[section.grade] += by_section[section.id]
    return PerformanceView(
        id=performance_id,
        musical_id=musical_id,
        starts_at=starts_at,
        total_seats=seat_map.total_seats,
        available_seats=sum(by_section.values()),
        available_by_grade=by_grade,
    )


async def get_performance(
    performance_id: str, store: AsyncDocumentStore, directory: PerformanceDirectory
) -> PerformanceView:
    """`GET /performances/{id}`: the performance, its counts summed from its sections."""
    performance = await directory.get_async(performance_id, store)
    seat_map = performance.seat_map
    available = await _available([performance.id], [s.id for s in seat_map.sections], store)
    return _view(performance.id, performance.musical_id, performance.starts_at, seat_map, available)


async def performance_views(
    musical: SeatedMusical, store: AsyncDocumentStore
) -> list[PerformanceView]:
    """Every performance of `musical` with its live counts: one read of all their counters."""
    seat_map = musical.seat_map
    performance_ids = [slot.id for slot in musical.performances]
    available = await _available(performance_ids, [s.id for s in seat_map.sections], store)
    return [
        _view(slot.id, musical.id, slot.starts_at, seat_map, available)
        for slot in musical.performances
    ]


async def seat_summary(
    performance_id: str, store: AsyncDocumentStore, directory: PerformanceDirectory
) -> dict[str, Any]:
    """`GET /performances/{id}/seats`: every section with its grade, price and free seats."""
    performance = await directory.get_async(performance_id, store)
    seat_map = performance.seat_map
    available = await _available([performance.id], [s.id for s in seat_map.sections], store)
    return {
        "performanceId": performance.id,
        "sections": [
            {
                "id": section.id,
                "grade": section.grade,
                "price": seat_map.grades[section.grade],
                "totalSeats": section.total_seats,
                "availableSeats": available.get((performance.id, section.id), 0),
            }
            for section in seat_map.sections
        ],
    }


async def section_seats(
    performance_id: str,
    section_id: str,
    store: AsyncDocumentStore,
    directory: PerformanceDirectory,
) -> str:
    """`GET /performances/{id}/seats?section=ID`: each seat of the section, free or not, as
    JSON text. Written once per state of the section's held seats (`SeatBook`), which is what
    a listing asked again and again while nobody buys costs: a lookup."""
    performance = await directory.get_async(performance_id, store)
    section = performance.seat_map.section(section_id)
    if section is None:
        raise NotFoundError(f"no section {section_id!r} in performance {performance_id}")
    held = (await directory.seats.held(performance.id, [section.id], store))[section.id]
    key = section_partition(performance.id, section.id)
    written = directory.listings.get(key)
    if written is not None and written[0] is held:
        return written[1]
    text = _listing(performance, section, held)
    if len(directory.listings) >= _LISTINGS_KEPT:
        directory.listings.clear()
    directory.listings[key] = (held, text)
    return text


def _listing(performance: Performance, section: Section, held: HeldSeats) -> str:
    """The listing's JSON, written directly: seat ids are letters, digits and dashes."""
    seats = ",".join(
        f'{{"id":"{seat.id}","row":{seat.row},"number":{seat.number},'
        f'"available":{"false" if seat in held else "true"}}}'
        for seat in section.seats()
    )
    head = _ENCODE_JSON(
        {
            "performanceId": performance.id,
            "section": section.id,
            "grade": section.grade,
            "price": performance.seat_map.grades[section.grade],
        }
    )
    return f'{head[:-1]},"seats":[{seats}]}}'
