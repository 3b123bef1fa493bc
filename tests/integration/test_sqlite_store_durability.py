"""The SQLite store keeps everything across restarts, and maps a busy database to a 429."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from devhost.embedded import sqlite_reader
from devhost.embedded.sqlite_store import DATABASE_FILE, SqliteDocumentStore
from shared.ports import Condition, Create, Incr, Patch, TooManyRequests
from shared.topology import MUSICALS

M = MUSICALS.name


def test_the_store_creates_its_directory_and_one_wal_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    store = SqliteDocumentStore(data_dir)
    store.create(M, {"id": "m1", "musicalId": "m1"})
    store.close()

    with sqlite3.connect(data_dir / DATABASE_FILE) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_items_positions_and_checkpoints_survive_a_restart(tmp_path: Path) -> None:
    first = SqliteDocumentStore(tmp_path)
    first.create(M, {"id": "m1", "musicalId": "m1", "availableSeats": 5})
    first.batch(
        M,
        "m1",
        [
            Patch("m1", [Incr("availableSeats", -2)], [Condition("availableSeats", ">=", 2)]),
            Create({"id": "r1", "musicalId": "m1"}),
        ],
    )
    last_before = first.read_changes(M, 0)[-1].lsn
    first.set_checkpoint(M, "relay", last_before)
    first.close()

    second = SqliteDocumentStore(tmp_path)
    second.create(M, {"id": "r2", "musicalId": "m1"})

    assert second.read(M, "m1", "m1")["availableSeats"] == 3
    assert second.get_checkpoint(M, "relay") == last_before
    after = second.read_changes(M, second.get_checkpoint(M, "relay"))
    assert [change.document["id"] for change in after] == ["r2"]
    assert after[0].lsn > last_before
    second.close()


def test_positions_keep_rising_after_the_newest_item_is_deleted(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path)
    store.create(M, {"id": "a", "musicalId": "m1"})
    store.create(M, {"id": "b", "musicalId": "m1"})
    deleted_position = store.read_changes(M, 0)[-1].lsn
    store.delete(M, "m1", "b")
    store.close()

    reopened = SqliteDocumentStore(tmp_path)
    reopened.create(M, {"id": "c", "musicalId": "m1"})

    assert reopened.read_changes(M, deleted_position)[0].document["id"] == "c"
    reopened.close()


def test_synchronous_normal_is_accepted_and_anything_else_refused(tmp_path: Path) -> None:
    SqliteDocumentStore(tmp_path, synchronous="NORMAL").close()

    with pytest.raises(ValueError, match="synchronous"):
        SqliteDocumentStore(tmp_path, synchronous="OFF")  # type: ignore[arg-type]


def test_a_write_blocked_by_another_process_lock_raises_too_many_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_reader, "BUSY_TIMEOUT_MS", 100)
    store = SqliteDocumentStore(tmp_path)
    store.create(M, {"id": "m1", "musicalId": "m1"})
    other = sqlite3.connect(tmp_path / DATABASE_FILE, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(TooManyRequests):
            store.create(M, {"id": "m2", "musicalId": "m2"})
        assert store.read(M, "m1", "m1")["id"] == "m1"
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.create(M, {"id": "m2", "musicalId": "m2"})
    store.close()


def test_a_closed_store_refuses_work(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path)
    store.close()

    with pytest.raises(RuntimeError, match="closed"):
        store.create(M, {"id": "m1", "musicalId": "m1"})


FIRST_LAYOUT = """
CREATE TABLE items (
    container TEXT NOT NULL, pk TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
    etag TEXT NOT NULL, expires_at REAL, lsn INTEGER NOT NULL,
    PRIMARY KEY (container, pk, id)
) WITHOUT ROWID;
CREATE INDEX items_by_lsn ON items (container, lsn);
CREATE INDEX items_by_expiry ON items (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE lsn_counters (container TEXT PRIMARY KEY, lsn INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE checkpoints (
    container TEXT NOT NULL, lease_prefix TEXT NOT NULL, lsn INTEGER NOT NULL,
    PRIMARY KEY (container, lease_prefix)
) WITHOUT ROWID;
INSERT INTO items VALUES ('musicals', 'm1', 'm1', '{"id":"m1","musicalId":"m1","_etag":"\\"e1\\""}',
                          '"e1"', NULL, 7);
INSERT INTO lsn_counters VALUES ('musicals', 7);
INSERT INTO checkpoints VALUES ('musicals', 'relay', 7);
"""


def test_a_data_dir_of_the_first_layout_is_brought_up_to_date_keeping_everything(
    tmp_path: Path,
) -> None:
    with sqlite3.connect(tmp_path / DATABASE_FILE) as old:
        old.executescript(FIRST_LAYOUT)

    store = SqliteDocumentStore(tmp_path)
    kept = store.read(M, "m1", "m1")
    store.replace(M, {"id": "m1", "musicalId": "m1", "title": "Hamilton"}, if_match='"e1"')
    changes = store.read_changes(M, store.get_checkpoint(M, "relay"))
    store.close()

    assert kept["_etag"] == '"e1"'
    assert [(change.lsn, change.document["title"]) for change in changes] == [(8, "Hamilton")]
    with sqlite3.connect(tmp_path / DATABASE_FILE) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 2
        layout = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'items'").fetchone()[0]
        assert "WITHOUT ROWID" not in layout
