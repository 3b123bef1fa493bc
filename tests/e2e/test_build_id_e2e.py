"""The health endpoints name the build that answers, and the deployment's smoke test waits for it
(infra/scripts/smoke.py), here against the real local host."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.scripts.smoke import smoke_test
from tests.support.devhost_process import DevHost
from tests.support.fake_gateway import FakeGateway

BUILD = "20261205.42"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHost]:
    with FakeGateway() as gateway:
        running = DevHost(
            tmp_path_factory.mktemp("devhost") / "data",
            {"PAYMENT_GATEWAY_URL": gateway.url, "OUTERPARK_BUILD_ID": BUILD},
        ).start()
        yield running
        running.close()


def _gateway(host: DevHost) -> str:
    return host.base_url.removesuffix("/api")


def test_health_and_readiness_name_the_running_build(host: DevHost) -> None:
    health = host.client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["build"] == BUILD
    assert host.client.get("/health/ready").json()["build"] == BUILD


def test_the_smoke_test_passes_once_the_new_build_is_serving_and_ready(host: DevHost) -> None:
    said: list[str] = []
    assert smoke_test(_gateway(host), BUILD, attempts=3, interval=0.1, say=said.append)
    assert any("/api/health/ready: 200" in line for line in said)


def test_the_smoke_test_fails_while_another_build_answers(host: DevHost) -> None:
    said: list[str] = []
    assert not smoke_test(_gateway(host), "next-build", attempts=3, interval=0.01, say=said.append)
    assert said[-1] == f"build next-build never answered through {_gateway(host)}"
    assert sum("GET /api/health:" in line for line in said) == 3
