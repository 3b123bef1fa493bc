"""Several processes share one SQLite store file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from devhost.embedded.sqlite_store import SqliteDocumentStore
from shared.topology import MUSICALS

M = MUSICALS.name
REPO = Path(__file__).resolve().parents[2]

RESERVING_WORKER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from devhost.embedded.sqlite_store import SqliteDocumentStore
    from shared.ports import BatchFailed, Condition, Create, Incr, Patch

    data_dir, name, attempts = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    store = SqliteDocumentStore(data_dir)
    reserved = refused = 0
    for n in range(attempts):
        try:
            store.batch("musicals", "m1", [
                Patch("m1", [Incr("availableSeats", -1)], [Condition("availableSeats", ">=", 1)]),
                Create({"id": f"{name}-{n}", "musicalId": "m1", "type": "reservation"}),
            ])
            reserved += 1
        except BatchFailed:
            refused += 1
    store.close()
    print(json.dumps({"reserved": reserved, "refused": refused}))
    """
)

CREATING_WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from devhost.embedded.sqlite_store import SqliteDocumentStore

    store = SqliteDocumentStore(Path(sys.argv[1]))
    store.create("musicals", {"id": sys.argv[2], "musicalId": "m1"})
    store.close()
    """
)


def start(script: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": ""},
        stdout=subprocess.PIPE,
        text=True,
    )


def test_two_processes_reserving_the_same_seats_never_oversell(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path)
    store.create(M, {"id": "m1", "musicalId": "m1", "availableSeats": 600})

    workers = [start(RESERVING_WORKER, tmp_path, name, 400) for name in ("left", "right")]
    results = [json.loads(worker.communicate(timeout=120)[0]) for worker in workers]

    assert all(worker.returncode == 0 for worker in workers)
    assert sum(result["reserved"] for result in results) == 600
    assert sum(result["refused"] for result in results) == 200
    assert store.read(M, "m1", "m1")["availableSeats"] == 0
    changes = store.read_changes(M, 0, max_items=10_000)
    reservations = [c for c in changes if c.document.get("type") == "reservation"]
    assert len(reservations) == 600
    positions = [change.lsn for change in changes]
    assert positions == sorted(set(positions))
    store.close()


def test_a_waiter_sees_a_change_written_by_another_process(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path)
    store.create(M, {"id": "m1", "musicalId": "m1"})
    position = store.read_changes(M, 0)[-1].lsn

    writer = start(CREATING_WORKER, tmp_path, "from-elsewhere")
    woken = store.wait_for_changes(M, position, timeout=30)
    writer.wait(timeout=60)

    assert woken is True
    assert [c.document["id"] for c in store.read_changes(M, position)] == ["from-elsewhere"]
    store.close()
