"""The saga's backlog after a load, read straight from devhost's data dir (SQLite's WAL lets a
reader look while the host writes).

Two views, sampled once a second until every reservation is Confirmed:
- reservations not yet Confirmed (what the customer waits for);
- what is queued in the saga's stages: each change-feed consumer's lag (changes written after
  its checkpoint) and each subscription's messages not yet settled (dead letters aside).

"The saga keeps up" (issue #3) is read on the second: how long after the load stopped each stage
was still growing (the bottleneck's queue grows while the stages before it catch up).
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from devhost.embedded.sqlite_bus import BUS_FILE
from devhost.embedded.sqlite_bus_schema import DEAD_LETTERED
from devhost.embedded.sqlite_reader import DATABASE_FILE

# The unconfirmed count scans every reservation (~50 ms of CPU at 25k): polled more often, it
# would slow the drain it measures.
POLL_SECONDS = 1.0
# A stage's backlog counts when it holds at least this share of the sagas left when the load
# stopped: below it, a few hundred messages coming and going is the pipeline at work.
BACKLOG_SHARE = 0.05
SHOWN_AT_SECONDS = (0, 1, 2, 3, 5, 10, 20, 30, 60, 90, 120, 180, 240, 300)


@dataclass(frozen=True)
class BacklogSample:
    seconds: float
    """After the load stopped."""
    unconfirmed: int
    stages: dict[str, int]


@dataclass(frozen=True)
class StagePeak:
    stage: str
    size: int
    seconds: float


def count_documents(data_dir: Path, container: str, where: str) -> int:
    """Documents of `container` for which the SQL condition `where` (on `body`) holds."""
    with closing(sqlite3.connect(data_dir / DATABASE_FILE)) as store:
        return store.execute(
            f"SELECT count(*) FROM items WHERE container = ? AND {where}", [container]
        ).fetchone()[0]


def unconfirmed(data_dir: Path) -> int:
    """Reservations not yet Confirmed."""
    return count_documents(
        data_dir,
        "musicals",
        "json_extract(body, '$.type') = 'reservation'"
        " AND json_extract(body, '$.status') = 'Reserved'",
    )


def in_history(data_dir: Path) -> int:
    """Reservations whose customer history shows them Confirmed with their notice sent."""
    return count_documents(
        data_dir,
        "customercenter",
        "json_extract(body, '$.reservationStatus') = 'Confirmed'"
        " AND json_array_length(body, '$.notices') > 0",
    )


def queued_in_stages(data_dir: Path) -> dict[str, int]:
    """Each change-feed consumer's lag and each subscription's unsettled messages."""
    with closing(sqlite3.connect(data_dir / DATABASE_FILE)) as store:
        feeds = store.execute(
            "SELECT 'feed ' || checkpoints.container || ' → ' || lease_prefix,"
            " lsn_counters.lsn - checkpoints.lsn"
            " FROM checkpoints JOIN lsn_counters USING (container)"
        ).fetchall()
    with closing(sqlite3.connect(data_dir / BUS_FILE)) as bus:
        queues = bus.execute(
            "SELECT 'queue ' || topic || '/' || subscription, count(*) FROM entries"
            " WHERE state != ? GROUP BY topic, subscription",
            [DEAD_LETTERED],
        ).fetchall()
    return dict(feeds + queues)


def sample(data_dir: Path, seconds: float) -> BacklogSample:
    return BacklogSample(seconds, unconfirmed(data_dir), queued_in_stages(data_dir))


@dataclass(frozen=True)
class Drain:
    samples: list[BacklogSample]
    drained_after: float | None
    """Seconds after the load until every reservation was Confirmed; None if not in time."""

    def peaks(self) -> list[StagePeak]:
        """Each stage's largest backlog and when it was seen, for the stages with a backlog
        (BACKLOG_SHARE)."""
        least = BACKLOG_SHARE * self.samples[0].unconfirmed
        peaks = []
        for stage in dict.fromkeys(name for s in self.samples for name in s.stages):
            top = max(self.samples, key=lambda s: s.stages.get(stage, 0))
            size = top.stages.get(stage, 0)
            if size >= least:
                peaks.append(StagePeak(stage, size, top.seconds))
        return sorted(peaks, key=lambda peak: peak.seconds)

    def lines(self) -> list[str]:
        samples = self.samples
        shown = sorted(
            {
                min(range(len(samples)), key=lambda i: abs(samples[i].seconds - at))
                for at in SHOWN_AT_SECONDS
                if at <= samples[-1].seconds
            }
        )
        peaks = self.peaks()
        last = peaks[-1] if peaks else None
        return [
            "sagas not yet Confirmed after the load stopped: "
            + ", ".join(f"{samples[i].seconds:.0f} s {samples[i].unconfirmed}" for i in shown),
            "largest backlog of each stage (changes behind on a feed, messages on a queue): "
            + ", ".join(f"{p.stage} {p.size} at {p.seconds:.0f} s" for p in peaks),
            "every stage shrank from the moment the load stopped"
            if last is None or last.seconds <= samples[0].seconds + POLL_SECONDS
            else f"the last stage to stop growing: {last.stage}, {last.seconds:.0f} s after the"
            " load stopped",
        ]


def follow_drain(data_dir: Path, load_ended: float, timeout: float) -> Drain:
    """Sample the backlog until no reservation is left unconfirmed, or `timeout` seconds after
    the load ended (`load_ended` is a time.monotonic())."""
    samples: list[BacklogSample] = []
    while True:
        seconds = time.monotonic() - load_ended
        samples.append(sample(data_dir, seconds))
        if samples[-1].unconfirmed == 0:
            return Drain(samples, seconds)
        if seconds >= timeout:
            return Drain(samples, None)
        time.sleep(POLL_SECONDS)
