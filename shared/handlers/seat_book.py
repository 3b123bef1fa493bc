"""What one process knows of the held seats of sections, for best available (docs/seating.md).

Two things make concurrent best-available requests cheap and keep them from colliding:

- **Known held seats.** A section's held seats are re-read only when its counter changed: the
  counter's `version` counts the batches that held or freed seats of the section, so an
  unchanged version means an unchanged set. One read of the grade's counters replaces, for each
  section that did not change, a query of up to 1,000 seat items. A hold of this process that
  moved the version by exactly one from the one known adds its seats to what is known without a
  read (nobody else wrote in between); holds whose answers come back out of order wait until
  the ones before them have (a version written by another process leaves a gap: re-read). For
  best available, what is known may lag the counter by the holds of this process still in
  flight there: their seats are claimed (below). A write of another process hidden in that lag
  (a cancel freeing seats) is seen once the lag is gone: until then those seats look taken.
- **Claims.** Seats that a request of this process has picked and is holding right now count
  as taken for the others. Without them every concurrent request reads the same seats, computes
  the same best ones, and all but one lose the race and read again. A claim lasts until its
  batch answers; if that batch fails the seats are free again for the next pick.

Neither can sell a seat twice or make a request answer seats someone else holds: only the
hold's batch decides, and a lost race still re-reads and picks again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from shared.domain.ids import section_partition
from shared.domain.performances import COUNTER_ID, HeldSeat
from shared.domain.seating import HeldSeats, Seat
from shared.ports import AsyncDocumentStore, Condition
from shared.topology import PERFORMANCES

_PAGE = 1000
_MAX_PENDING = 1000


@dataclass(frozen=True)
class _Known:
    version: int
    held: HeldSeats


class SeatBook:
    """Per process: each section partition's held seats as last read, and the seats claimed."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._known: dict[str, _Known] = {}
        self._claimed: dict[str, set[Seat]] = {}
        self._in_flight: dict[str, int] = {}
        # This process's holds whose answers came back before the one before them (out of order):
        # by partition, the version each left the counter at, and its seats.
        self._pending: dict[str, dict[int, tuple[Seat, ...]]] = {}
        self._lock = threading.Lock()

    async def taken(
        self, performance_id: str, section_ids: Sequence[str], store: AsyncDocumentStore
    ) -> dict[str, HeldSeats]:
        """The seats of each section that are held or claimed, as far as is known now."""
        held = await self._held(performance_id, section_ids, store, claimed_too=True)
        with self._lock:
            claims = {
                section_id: tuple(claimed)
                for section_id in held
                if (claimed := self._claimed.get(section_partition(performance_id, section_id)))
            }
        return {
            section_id: seats.adding(claims[section_id]) if section_id in claims else seats
            for section_id, seats in held.items()
        }

    async def held(
        self, performance_id: str, section_ids: Sequence[str], store: AsyncDocumentStore
    ) -> dict[str, HeldSeats]:
        """The held seats of each section now: as known when its counter did not change since,
        else read again."""
        return await self._held(performance_id, section_ids, store, claimed_too=False)

    async def _held(
        self,
        performance_id: str,
        section_ids: Sequence[str],
        store: AsyncDocumentStore,
        claimed_too: bool,
    ) -> dict[str, HeldSeats]:
        """`held`; with `claimed_too`, for callers that add the claimed seats themselves: what is
        known may then lag the counter by as many versions as this process has holds in flight
        there (committed, not yet answered), since their seats are claimed."""
        partitions = {s: section_partition(performance_id, s) for s in section_ids}
        keys = [(partition, COUNTER_ID) for partition in partitions.values()]
        counters = await store.read_many_async(PERFORMANCES.name, keys)
        versions = {counter["sectionId"]: counter.get("version", 0) for counter in counters}
        found: dict[str, HeldSeats] = {}
        for section_id, partition in partitions.items():
            version = versions.get(section_id)
            known = self._known.get(partition)
            # Known at a version the counter had by then, or past it (a hold of this process
            # answered while the counters were read): current enough.
            lag = self._in_flight.get(partition, 0) if claimed_too else 0
            if known is None or version is None or known.version < version - lag:
                # Read after the counter: the set is at least as new as that version.
                ids = await held_seat_ids(performance_id, section_id, store)
                held = HeldSeats.of(section_id, (Seat.parse(seat_id) for seat_id in ids))
                if version is not None:
                    self._remember(partition, _Known(version, held))
            else:
                held = known.held
            found[section_id] = held
        return found

    def add_held(self, partition: str, seats: Sequence[Seat], version: int) -> None:
        """This process's hold of `seats` left the counter at `version`: what is known moves on
        when it knew `version - 1` (at once, or once the holds before it have come back)."""
        with self._lock:
            pending = self._pending.setdefault(partition, {})
            if len(pending) >= _MAX_PENDING:  # a gap nobody here will fill: start again
                pending.clear()
            pending[version] = tuple(seats)
            self._advance(partition)

    def forget(self, partition: str) -> None:
        """Read the partition's seats again next time (a hold there lost a race)."""
        with self._lock:
            self._known.pop(partition, None)

    @contextmanager
    def claiming(self, partition: str, seats: Sequence[Seat]) -> Iterator[None]:
        with self._lock:
            self._claimed.setdefault(partition, set()).update(seats)
            self._in_flight[partition] = self._in_flight.get(partition, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                claimed = self._claimed.get(partition, set())
                claimed.difference_update(seats)
                if not claimed:
                    self._claimed.pop(partition, None)
                left = self._in_flight.pop(partition, 1) - 1
                if left:
                    self._in_flight[partition] = left

    def _remember(self, partition: str, known: _Known) -> None:
        with self._lock:
            if len(self._known) >= self._capacity:
                self._known.clear()
                self._pending.clear()
            self._known[partition] = known
            self._advance(partition)

    def _advance(self, partition: str) -> None:
        """Apply the pending holds that follow what is known, in version order (lock held)."""
        known, pending = self._known.get(partition), self._pending.get(partition)
        if known is None or not pending:
            return
        version, held = known.version, known.held
        while version + 1 in pending:
            version += 1
            held = held.adding(pending.pop(version))
        for passed in [v for v in pending if v <= version]:
            del pending[passed]
        self._known[partition] = _Known(version, held)


async def held_seat_ids(
    performance_id: str, section_id: str, store: AsyncDocumentStore
) -> set[str]:
    """The ids of the section's held seats: one query in its partition, page by page."""
    partition = section_partition(performance_id, section_id)
    held: set[str] = set()
    continuation: str | None = None
    while True:
        page = await store.query_async(
            PERFORMANCES.name,
            partition,
            [Condition("type", "=", HeldSeat.DOC_TYPE)],
            (),
            _PAGE,
            continuation,
        )
        held.update(item["id"] for item in page.items)
        continuation = page.continuation
        if continuation is None:
            return held
