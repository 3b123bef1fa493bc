"""End-to-end fixtures: a devhost subprocess, tokens minted by `python -m devhost token`, and a
real fake payment gateway the tests can break."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.devhost_process import DevHost, auth
from tests.support.fake_gateway import FakeGateway


@dataclass
class Api:
    """A devhost with an admin and two customers ready to call it."""

    host: DevHost
    admin: dict[str, str]
    alice: dict[str, str]
    bob: dict[str, str]

    @property
    def http(self) -> httpx.Client:
        return self.host.client

    def musical(self, seats: int = 10, price: int = 1000, title: str = "Les Misérables") -> dict:
        response = self.http.post(
            "/musicals", json={"title": title, "seats": seats, "price": price}, headers=self.admin
        )
        assert response.status_code == 201, response.text
        return response.json()

    def status_of(self, reservation_id: str) -> str:
        """The reservation's status, read as an admin."""
        response = self.http.get(f"/reservations/{reservation_id}", headers=self.admin)
        return response.json()["status"]

    def history(self, who: dict[str, str]) -> dict[str, dict]:
        """The caller's history items (first 100), by reservation id."""
        response = self.http.get("/history", headers=who, params={"limit": 100})
        assert response.status_code == 200, response.text
        return {item["reservationId"]: item for item in response.json()["items"]}

    def reserve(self, musical_id: str, seats: int = 2, who: dict[str, str] | None = None):
        return self.http.post(
            "/reservations",
            json={"musicalId": musical_id, "seats": seats},
            headers=who or self.alice,
        )


def make_api(host: DevHost) -> Api:
    return Api(
        host=host,
        admin=auth(host.token("boss", admin=True)),
        alice=auth(host.token("alice")),
        bob=auth(host.token("bob")),
    )


@pytest.fixture(scope="module")
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway() as running:
        yield running


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, gateway: FakeGateway) -> Iterator[Api]:
    host = DevHost(
        tmp_path_factory.mktemp("devhost") / "data", {"PAYMENT_GATEWAY_URL": gateway.url}
    ).start()
    yield make_api(host)
    host.close()
