"""The edge through `python -m devhost` (openapi.yaml): correlation ids kept only in their shape,
continuation tokens only as issued, oversized bodies refused before they are sent, and the
per-customer seat cap, sequentially and under parallel requests of one customer."""

from __future__ import annotations

import base64
import json
import socket
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.conftest import Api
from tests.e2e.test_sync_api import assert_problem
from tests.support.devhost_process import auth
from tests.support.eventually import eventually

pytestmark = pytest.mark.e2e


# --------------------------------------------------------------------------- correlation ids


@pytest.mark.parametrize("sent", ["trace-me.42:a_b", "x" * 128])
def test_a_correlation_id_of_the_contracts_shape_is_kept_through_the_reservation(api: Api, sent):
    musical = api.musical(seats=5)

    response = api.http.post(
        "/reservations",
        json={"musicalId": musical["id"], "seats": 1},
        headers=api.alice | {"X-Correlation-Id": sent},
    )

    assert response.status_code == 201
    assert response.headers["X-Correlation-Id"] == sent
    assert response.json()["correlationId"] == sent


@pytest.mark.parametrize(
    "sent",
    ["x" * 129, "has space", "<script>", "a/b", "semi;colon", 'quote"d'],
    ids=["too-long", "space", "angle-brackets", "slash", "semicolon", "quote"],
)
def test_any_other_correlation_id_is_replaced_by_the_servers_own(api: Api, sent):
    musical = api.musical(seats=5)

    response = api.http.post(
        "/reservations",
        json={"musicalId": musical["id"], "seats": 1},
        headers=api.alice | {"X-Correlation-Id": sent},
    )

    fresh = response.headers["X-Correlation-Id"]
    assert response.status_code == 201
    assert fresh != sent
    assert response.json()["correlationId"] == fresh


def test_the_hosts_own_answers_replace_a_bad_correlation_id_too(api: Api):
    response = api.http.get("/no-such-route", headers={"X-Correlation-Id": "x" * 500})

    assert response.status_code == 404
    assert response.headers["X-Correlation-Id"] != "x" * 500


# --------------------------------------------------------------------------- continuation tokens


def alter(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


def forged() -> str:
    """A token in the SQLite store's own format, with values no document is sorted by."""
    inner = json.dumps({"o": [["createdAt", False]], "k": [{"$gt": 1}], "id": "x"})
    return base64.urlsafe_b64encode(inner.encode()).decode().rstrip("=")


@pytest.fixture(scope="module")
def carol(api: Api) -> dict[str, str]:
    return auth(api.host.token("carol"))


@pytest.fixture(scope="module")
def pages(api: Api, carol: dict[str, str]) -> dict[str, str]:
    """A next-page token of each list: the catalog, and carol's and dave's histories."""
    dave = auth(api.host.token("dave"))
    musical = api.musical(seats=20)
    for who in (carol, carol, dave, dave):
        assert api.reserve(musical["id"], seats=1, who=who).status_code == 201
    api.musical(seats=1)

    def history_token(who: dict[str, str]) -> str:
        def first_page() -> str | None:
            return api.http.get("/history", params={"limit": 1}, headers=who).json()[
                "continuationToken"
            ]

        return eventually(first_page, what="a second page of history")

    return {
        "musicals": api.http.get("/musicals", params={"limit": 1}).json()["continuationToken"],
        "carol": history_token(carol),
        "dave": history_token(dave),
    }


def test_the_tokens_the_lists_issued_page_on(api: Api, pages, carol):
    musicals = api.http.get(
        "/musicals", params={"limit": 1, "continuationToken": pages["musicals"]}
    )
    history = api.http.get(
        "/history", params={"limit": 1, "continuationToken": pages["carol"]}, headers=carol
    )

    assert musicals.status_code == 200
    assert history.status_code == 200


@pytest.mark.parametrize("kind", ["altered", "forged", "garbage"])
def test_a_token_the_catalog_did_not_issue_is_a_422(api: Api, pages, kind):
    token = {"altered": alter(pages["musicals"]), "forged": forged(), "garbage": "]]%00"}[kind]

    response = api.http.get("/musicals", params={"continuationToken": token})

    problem = assert_problem(response, 422)
    assert problem["type"].endswith("/invalid-continuation-token")


@pytest.mark.parametrize("kind", ["altered", "forged", "another-customers", "the-catalogs"])
def test_a_token_the_callers_history_did_not_issue_is_a_422(api: Api, pages, carol, kind):
    token = {
        "altered": alter(pages["carol"]),
        "forged": forged(),
        "another-customers": pages["dave"],
        "the-catalogs": pages["musicals"],
    }[kind]

    response = api.http.get("/history", params={"continuationToken": token}, headers=carol)

    assert_problem(response, 422)


# --------------------------------------------------------------------------- body size


def test_a_declared_body_over_64_kib_is_refused_before_the_body_is_sent(api: Api):
    head = (
        "POST /api/musicals HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{api.host.port}\r\n"
        f"Authorization: {api.admin['Authorization']}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {64 * 1024 + 1}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", api.host.port), timeout=10) as connection:
        connection.sendall(head.encode() + b'{"title": "')  # and not one byte more
        answer = connection.recv(65536)

    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413")
    assert b"application/problem+json" in rest.lower()


def test_a_body_of_64_kib_is_still_read(api: Api):
    body = json.dumps({"title": "Edge", "seats": 1, "price": 1}).encode().ljust(64 * 1024)

    response = api.http.post("/musicals", content=body, headers=api.admin)

    assert response.status_code == 201


# --------------------------------------------------------------------------- seat cap


def capped_musical(api: Api, cap: int, seats: int = 50) -> dict:
    response = api.http.post(
        "/musicals",
        json={"title": "Capped", "seats": seats, "price": 100, "maxSeatsPerCustomer": cap},
        headers=api.admin,
    )
    assert response.status_code == 201, response.text
    assert response.json()["maxSeatsPerCustomer"] == cap
    return response.json()


@pytest.mark.parametrize("cap", [0, 101, "4", 2.5, True])
def test_an_invalid_cap_is_refused_with_422(api: Api, cap):
    response = api.http.post(
        "/musicals",
        json={"title": "T", "seats": 5, "price": 1, "maxSeatsPerCustomer": cap},
        headers=api.admin,
    )

    assert_problem(response, 422)


def test_the_cap_holds_sequentially_and_a_cancel_gives_the_allowance_back(api: Api):
    erin = auth(api.host.token("erin"))
    musical = capped_musical(api, cap=4)

    first = api.reserve(musical["id"], seats=2, who=erin)
    second = api.reserve(musical["id"], seats=2, who=erin)
    over = api.reserve(musical["id"], seats=1, who=erin)
    someone_else = api.reserve(musical["id"], seats=4, who=api.bob)
    cancelled = api.http.post(f"/reservations/{first.json()['id']}/cancel", headers=erin)
    after_cancel = api.reserve(musical["id"], seats=2, who=erin)

    assert (first.status_code, second.status_code) == (201, 201)
    assert assert_problem(over, 409)["type"].endswith("/seat-limit")
    assert someone_else.status_code == 201
    assert cancelled.status_code == 200
    assert after_cancel.status_code == 201
    assert api.http.get(f"/musicals/{musical['id']}").json()["availableSeats"] == 50 - 8


def test_a_replayed_idempotency_key_answers_its_reservation_even_at_the_cap(api: Api):
    frank = auth(api.host.token("frank"))
    musical = capped_musical(api, cap=3)
    body = {"musicalId": musical["id"], "seats": 3}

    first = api.http.post("/reservations", json=body, headers=frank | {"Idempotency-Key": "k1"})
    replay = api.http.post("/reservations", json=body, headers=frank | {"Idempotency-Key": "k1"})

    assert first.status_code == 201
    assert replay.status_code == 200
    assert replay.json()["id"] == first.json()["id"]


def test_ten_parallel_requests_of_one_customer_never_end_above_the_cap(api: Api):
    grace = auth(api.host.token("grace"))
    musical = capped_musical(api, cap=4)

    def attempt(_: int) -> httpx.Response:
        with httpx.Client(base_url=api.host.base_url, timeout=30) as client:
            return client.post(
                "/reservations", json={"musicalId": musical["id"], "seats": 1}, headers=grace
            )

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(attempt, range(10)))

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] * 4 + [409] * 6
    assert all(a.json()["type"].endswith("/seat-limit") for a in answers if a.status_code == 409)
    assert api.http.get(f"/musicals/{musical['id']}").json()["availableSeats"] == 50 - 4


# --------------------------------------------------------------------------- readiness


def test_the_anonymous_readiness_answer_shows_states_only(api: Api):
    body = api.http.get("/health/ready").json()

    assert {name: set(check) for name, check in body["checks"].items()} == {
        name: {"status", "durationMs"} for name in ("store", "bus", "auth")
    }
    assert body["checks"]["auth"]["status"] == "ok"
