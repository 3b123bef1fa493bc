"""`python -m devhost` as a subprocess hosting the fixture app: what clients and operators see."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from bench.processes import devhost_processes
from devhost.embedded.sqlite_bus import SqliteMessageBus
from devhost.embedded.sqlite_store import SqliteDocumentStore
from shared.settings import DEV_JWT_SECRET
from tests.support.devhost_process import PROJECT_ROOT, DevHost
from tests.support.eventually import eventually
from tests.support.processes import alive

pytestmark = pytest.mark.e2e


FIXTURE_APP = Path(__file__).with_name("fixture_app.py")
# The fixture app never pays: point the gateway at a closed port instead of the simulator.
NO_GATEWAY = {"PAYMENT_GATEWAY_URL": "http://127.0.0.1:9"}


@pytest.fixture
def host_factory(tmp_path: Path) -> Iterator[Callable[..., DevHost]]:
    started: list[DevHost] = []

    def start(*args: str, **env: str | None) -> DevHost:
        hosted = DevHost(tmp_path / "data", NO_GATEWAY | env, ("--app", str(FIXTURE_APP), *args))
        started.append(hosted.start())
        return hosted

    yield start
    for hosted in started:
        hosted.kill()
        hosted.client.close()


@pytest.fixture
def host(host_factory: Callable[..., DevHost]) -> DevHost:
    return host_factory()


def _records(host: DevHost, kind: str) -> list[dict[str, Any]]:
    return [r for r in httpx.get(f"{host.base_url}/records").json() if r["kind"] == kind]


def test_the_host_serves_the_apps_routes_and_answers_unknown_ones_with_problems(
    host: DevHost,
) -> None:
    echo = httpx.post(
        f"{host.base_url}/echo/abc?x=1", content=b"hi", headers={"X-Correlation-Id": "c-1"}
    )
    missing = httpx.get(f"{host.base_url}/missing", headers={"X-Correlation-Id": "c-2"})

    assert echo.status_code == 200
    assert echo.json()["routeParams"] == {"id": "abc"}
    assert echo.json()["params"] == {"x": "1"}
    assert echo.json()["body"] == "hi"
    assert echo.headers["x-correlation-id"] == "c-1"
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["x-correlation-id"] == "c-2"


def test_access_lines_are_json_with_method_path_status_duration_and_correlation_id(
    host: DevHost,
) -> None:
    httpx.get(f"{host.base_url}/echo/1", headers={"X-Correlation-Id": "c-access"})

    def access_line() -> dict[str, Any] | None:
        for line in host.logs().splitlines():
            if '"devhost.access"' in line and "c-access" in line:
                return json.loads(line)
        return None

    line = eventually(access_line)
    assert (line["method"], line["path"], line["status"]) == ("GET", "/api/echo/1", 200)
    assert line["correlationId"] == "c-access"
    assert line["durationMs"] >= 0


def test_a_declared_body_over_64_kib_is_refused_before_it_is_sent(host: DevHost) -> None:
    with socket.create_connection(("127.0.0.1", host.port), timeout=5) as connection:
        connection.sendall(
            b"POST /api/echo/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 65537\r\n\r\nabc"
        )
        status_line = connection.recv(4096).split(b"\r\n", 1)[0]

    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"


def test_the_development_jwt_secret_is_announced_when_none_is_set(
    host_factory: Callable[..., DevHost],
) -> None:
    host = host_factory(OUTERPARK_JWT_SECRET=None)

    assert DEV_JWT_SECRET in host.logs()


def test_a_service_bus_function_gets_published_messages_with_their_fields(
    host: DevHost,
) -> None:
    httpx.post(
        f"{host.base_url}/publish/reservation",
        json={
            "messageId": "m-1",
            "subject": "ReservationPlaced",
            "correlationId": "c-sb",
            "properties": {"attempt": 1},
            "body": {"reservationId": "r-1"},
        },
    ).raise_for_status()

    (record,) = eventually(lambda: _records(host, "servicebus"))
    assert record["messageId"] == "m-1"
    assert record["deliveryCount"] == 1
    assert record["subject"] == "ReservationPlaced"
    assert record["correlationId"] == "c-sb"
    assert record["applicationProperties"] == {"attempt": 1}
    assert record["body"] == {"reservationId": "r-1"}


def test_a_failing_message_is_redelivered_then_dead_lettered_after_max_deliveries(
    host: DevHost,
) -> None:
    httpx.post(
        f"{host.base_url}/publish/reservation",
        json={"messageId": "poison", "body": {"fail": True}},
    ).raise_for_status()

    eventually(lambda: len(_records(host, "servicebus")) == 10)
    bus = SqliteMessageBus(host.data_dir)
    try:
        (dead,) = eventually(lambda: bus.dead_letters("reservation", "payment"))
    finally:
        bus.close()
    assert dead.message_id == "poison"
    assert sorted(r["deliveryCount"] for r in _records(host, "servicebus")) == list(range(1, 11))


def test_a_cosmos_function_is_retried_under_its_policy(host: DevHost) -> None:
    httpx.post(
        f"{host.base_url}/documents", json={"id": "flaky", "musicalId": "flaky", "failTimes": 2}
    ).raise_for_status()

    records = eventually(lambda: len(_records(host, "cosmos")) == 3 and _records(host, "cosmos"))
    assert sorted(r["attempt"] for r in records) == [1, 2, 3]


def test_after_sigkill_a_restarted_host_resumes_the_change_feed_from_its_checkpoint(
    host_factory: Callable[..., DevHost],
) -> None:
    host = host_factory()
    httpx.post(f"{host.base_url}/documents", json={"id": "a", "musicalId": "a"}).raise_for_status()
    eventually(lambda: _records(host, "cosmos"))
    store = SqliteDocumentStore(host.data_dir)
    try:
        eventually(lambda: store.get_checkpoint("musicals", "fixture-") > 0)
    finally:
        store.close()
    host.signal(signal.SIGKILL)
    host.wait()

    again = host_factory()
    httpx.post(f"{again.base_url}/documents", json={"id": "b", "musicalId": "b"}).raise_for_status()

    eventually(lambda: any(r["documentId"] == "b" for r in _records(again, "cosmos")))
    delivered = sorted(r["documentId"] for r in _records(again, "cosmos"))
    assert delivered == ["a", "b"]  # "a" once, before the kill; never again


def test_sigterm_lets_an_in_flight_request_finish_and_exits_cleanly(host: DevHost) -> None:
    answers: list[httpx.Response] = []
    request = threading.Thread(
        target=lambda: answers.append(httpx.get(f"{host.base_url}/slow?seconds=1", timeout=10))
    )
    request.start()
    eventually(lambda: _records(host, "slow"))

    host.signal(signal.SIGTERM)
    request.join()

    assert answers[0].status_code == 200
    assert host.wait(timeout=20) == 0
    assert "host stopped" in host.logs()


def test_a_function_hung_past_the_shutdown_grace_does_not_keep_the_host_alive(
    host_factory: Callable[..., DevHost],
) -> None:
    host = host_factory("--shutdown-grace", "1")

    def call_and_lose_the_answer() -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"{host.base_url}/hang?seconds=60", timeout=30)

    threading.Thread(target=call_and_lose_the_answer, daemon=True).start()
    eventually(lambda: _records(host, "hang"))

    host.signal(signal.SIGTERM)

    assert host.wait(timeout=20) == 0
    assert "exiting with function calls still running" in host.logs()


@pytest.mark.parametrize("secret", [None, "a-secret-of-our-own-long-enough-for-hs256"])
def test_the_token_command_prints_a_jwt_that_verifies_with_the_local_secret(
    secret: str | None,
) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "OUTERPARK_JWT_SECRET"}
    if secret:
        environment["OUTERPARK_JWT_SECRET"] = secret
    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "devhost",
            "token",
            "--sub",
            "cust-1",
            "--role",
            "admin",
            "--ttl",
            "120",
        ],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    claims = jwt.decode(printed, secret or DEV_JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "cust-1"
    assert claims["roles"] == ["admin"]
    assert claims["exp"] - claims["iat"] == 120


def _children(pid: int) -> dict[str, int]:
    """The child processes of the devhost `pid`, by role: store, bus-triggers, ..."""
    return {role: child for role, child in devhost_processes(pid).items() if role != "http"}


def test_the_host_runs_its_store_and_triggers_as_child_processes_the_triggers_behind(
    host: DevHost,
) -> None:
    assert host.process is not None
    processes = _children(host.process.pid)

    assert set(processes) == {"store", "bus-triggers", "feed-triggers"}  # a gateway URL was given
    for role in ("bus-triggers", "feed-triggers"):
        stat = Path(f"/proc/{processes[role]}/stat")
        eventually(lambda stat=stat: int(stat.read_text().rsplit(")", 1)[1].split()[16]) > 0)


def test_a_killed_store_service_is_started_again_and_writes_go_on(host: DevHost) -> None:
    assert host.process is not None
    store_pid = _children(host.process.pid)["store"]
    httpx.post(f"{host.base_url}/documents", json={"id": "a", "musicalId": "a"}).raise_for_status()

    os.kill(store_pid, signal.SIGKILL)
    eventually(lambda: _children(host.process.pid).get("store") not in (None, store_pid))
    written = eventually(
        lambda: (
            httpx.post(f"{host.base_url}/documents", json={"id": "b", "musicalId": "b"}).is_success
        ),
        timeout=15,
    )

    assert written
    assert "store process exited" in host.logs()


def test_the_child_processes_end_with_a_killed_host(
    host_factory: Callable[..., DevHost],
) -> None:
    host = host_factory()
    assert host.process is not None
    processes = _children(host.process.pid)

    host.signal(signal.SIGKILL)
    host.wait()

    for name, pid in processes.items():
        eventually(lambda pid=pid: not alive(pid), timeout=15, what=f"the {name} process")
