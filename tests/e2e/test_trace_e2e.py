"""`python -m devhost trace ID`: every step of one reservation's saga, through the real host."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.e2e.conftest import make_api
from tests.support.devhost_process import PROJECT_ROOT, DevHost
from tests.support.eventually import eventually
from tests.support.fake_gateway import FakeGateway

pytestmark = pytest.mark.e2e

# Each step of an approved reservation's saga, and the step it follows from.
SAGA_STEPS = {
    "create_reservation": None,
    "batch musicals": "create_reservation",
    "relay_reservation_events ReservationPlaced": "create_reservation",
    "history_from_musicals ReservationPlaced": "create_reservation",
    "charge_reservation": "relay_reservation_events ReservationPlaced",
    "gateway confirm": "charge_reservation",
    "relay_payment_events PaymentApproved": "charge_reservation",
    "history_from_payments PaymentApproved": "charge_reservation",
    "settle_reservation": "relay_payment_events PaymentApproved",
    "notify_customer": "relay_payment_events PaymentApproved",
    "history_from_musicals ReservationConfirmed": "settle_reservation",
    "history_from_notices notice": "notify_customer",
}
STEP_LINE = re.compile(
    r"^(?P<indent> *)(?P<name>.+?)  \[(?P<process>[\w-]+)\]  (?P<start>\S+)  "
    r"(?P<ms>[\d.]+) ms  (?P<outcome>.+)$"
)


def devhost_trace(host: DevHost, id_: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devhost", "trace", id_, "--data-dir", str(host.data_dir)],
        cwd=PROJECT_ROOT,
        env=host.env,
        capture_output=True,
        text=True,
        check=False,
    )


def steps_of(output: str) -> dict[str, tuple[int, str, str]]:
    """Each step's name → (depth, parent step, process); the first line names the trace."""
    steps: dict[str, tuple[int, str, str]] = {}
    parents: list[str] = []
    for line in output.splitlines()[1:]:
        match = STEP_LINE.match(line)
        assert match, f"not a step line: {line!r}"
        depth = len(match["indent"]) // 2
        del parents[depth - 1 :]
        steps.setdefault(match["name"], (depth, parents[-1] if parents else "", match["process"]))
        parents.append(match["name"])
    return steps


def complete(output: str) -> bool:
    return set(SAGA_STEPS) <= steps_of(output).keys()


def test_devhost_trace_prints_every_step_of_a_reservation_by_either_id_even_with_the_host_stopped(
    tmp_path,
):
    with FakeGateway() as gateway:
        host = DevHost(tmp_path / "data", {"PAYMENT_GATEWAY_URL": gateway.url}).start()
        try:
            api = make_api(host)
            musical = api.musical(price=500)
            response = api.http.post(
                "/reservations",
                json={"musicalId": musical["id"], "seats": 2},
                headers={**api.alice, "X-Correlation-Id": "trace-e2e-1"},
            )
            reservation_id = response.json()["id"]
            by_id = eventually(
                lambda: (out := devhost_trace(host, reservation_id).stdout) and complete(out),
                timeout=20,
                what="every step in the trace",
            )
        finally:
            host.close()

    by_id = devhost_trace(host, reservation_id).stdout
    steps = steps_of(by_id)
    for name, parent in SAGA_STEPS.items():
        assert steps[name][1] == (parent or ""), f"{name} follows {steps[name][1]}"
    assert steps["create_reservation"][2] == "http"
    assert steps["charge_reservation"][2] == "bus-triggers"
    assert steps["relay_reservation_events ReservationPlaced"][2] == "feed-triggers"
    (confirm,) = [line for line in by_id.splitlines() if line.strip().startswith("gateway ")]
    assert confirm.endswith("  approved")
    first = by_id.splitlines()[0]
    assert reservation_id in first
    assert "trace-e2e-1" in first
    assert "  201" in by_id.splitlines()[1]

    # The spans live in the data dir: the same story with the host stopped, by correlation id.
    by_correlation = devhost_trace(host, "trace-e2e-1")
    assert by_correlation.returncode == 0
    assert by_correlation.stdout.splitlines()[0] == first
    assert steps_of(by_correlation.stdout).keys() >= SAGA_STEPS.keys()


def test_devhost_trace_exits_1_with_a_message_for_an_unknown_id(tmp_path):
    host = DevHost(tmp_path / "data")
    (host.data_dir / "traces").mkdir(parents=True)

    unknown = devhost_trace(host, "no-such-reservation")

    assert unknown.returncode == 1
    assert "nothing is known of no-such-reservation" in unknown.stderr
    assert unknown.stdout == ""


def test_devhost_trace_reads_a_saga_whose_spans_were_rotated_across_files(tmp_path):
    rotating = {"OUTERPARK_TRACE_FILE_MAX_MB": "0.002", "OUTERPARK_TRACE_FILES_KEPT": "500"}
    with FakeGateway() as gateway:
        host = DevHost(tmp_path / "data", {"PAYMENT_GATEWAY_URL": gateway.url, **rotating})
        host.start()
        try:
            api = make_api(host)
            reservation_ids = []
            for _ in range(3):  # one saga after the other: their spans in separate batches
                reservation_id = api.reserve(api.musical()["id"]).json()["id"]
                reservation_ids.append(reservation_id)
                eventually(
                    lambda rid=reservation_id: (
                        (out := devhost_trace(host, rid).stdout) and complete(out)
                    ),
                    timeout=20,
                    what="every step in the trace",
                )
        finally:
            host.close()

    first = reservation_ids[0]
    assert complete(devhost_trace(host, first).stdout)
    traces = host.data_dir / "traces"
    holding = [path for path in traces.iterdir() if first in path.read_text()]
    assert len(holding) >= 2, "the saga's spans should be spread over several files"
    assert any(path.suffix != ".jsonl" for path in holding), "some in rotated files"
