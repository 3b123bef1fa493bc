"""The synchronous HTTP API of openapi.yaml, through `python -m devhost`, over HTTP only."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import jwt
import pytest

from tests.support.devhost_process import TEST_JWT_SECRET, auth
from tests.support.eventually import eventually

pytestmark = pytest.mark.e2e


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    return problem


def test_health_answers_without_a_token(api):
    response = api.http.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_every_response_carries_the_callers_correlation_id_or_a_new_one(api):
    echoed = api.http.get("/health", headers={"X-Correlation-Id": "trace-me-42"})
    fresh = api.http.get("/musicals/nope")
    assert echoed.headers["X-Correlation-Id"] == "trace-me-42"
    assert fresh.headers["X-Correlation-Id"]


def test_an_admin_registers_a_musical_that_anyone_can_read(api):
    created = api.http.post(
        "/musicals",
        json={
            "title": "Wicked",
            "seats": 30,
            "price": 1500,
            "venue": "Apollo",
            "performanceAt": "2026-12-24T19:30:00+09:00",
        },
        headers=api.admin,
    )
    assert created.status_code == 201
    musical = created.json()
    assert musical["totalSeats"] == musical["availableSeats"] == 30
    assert musical["price"] == 1500

    assert api.http.get(f"/musicals/{musical['id']}").json() == musical


def test_musicals_are_listed_in_pages(api):
    ids = {api.musical(title=f"Page {i}")["id"] for i in range(3)}
    seen: set[str] = set()
    token = None
    while True:
        params = {"limit": 2} | ({"continuationToken": token} if token else {})
        page = api.http.get("/musicals", params=params).json()
        assert len(page["items"]) <= 2
        seen |= {item["id"] for item in page["items"]}
        token = page["continuationToken"]
        if token is None:
            break
    assert ids <= seen


@pytest.mark.parametrize("limit", ["0", "101", "abc", "1.5"])
def test_a_bad_page_size_is_invalid(api, limit):
    assert_problem(api.http.get("/musicals", params={"limit": limit}), 422)


def test_a_customer_cannot_register_musicals(api):
    response = api.http.post(
        "/musicals", json={"title": "X", "seats": 1, "price": 0}, headers=api.alice
    )
    assert_problem(response, 403)


@pytest.mark.parametrize(
    "body",
    [
        {"title": "", "seats": 10, "price": 1},
        {"title": "x" * 201, "seats": 10, "price": 1},
        {"title": "T", "seats": 0, "price": 1},
        {"title": "T", "seats": 100_001, "price": 1},
        {"title": "T", "seats": "10", "price": 1},
        {"title": "T", "seats": 10.5, "price": 1},
        {"title": "T", "seats": True, "price": 1},
        {"title": "T", "seats": 10, "price": -1},
        {"title": "T", "seats": 10, "price": 10_000_001},
        {"title": "T", "seats": 10},
        {"title": "T", "seats": 10, "price": 1, "performanceAt": "next tuesday"},
        [],
    ],
)
def test_an_invalid_musical_is_refused_with_422_and_nothing_is_created(api, body):
    before = api.http.get("/musicals", params={"limit": 100}).json()["items"]
    assert_problem(api.http.post("/musicals", json=body, headers=api.admin), 422)
    assert api.http.get("/musicals", params={"limit": 100}).json()["items"] == before


def test_malformed_json_is_a_400(api):
    response = api.http.post(
        "/musicals", content=b'{"title": ', headers=api.admin | {"Content-Type": "application/json"}
    )
    assert_problem(response, 400)


def test_a_body_over_64_kib_is_a_413(api):
    big = b'{"title": "' + b"x" * (64 * 1024) + b'", "seats": 1, "price": 1}'
    assert_problem(api.http.post("/musicals", content=big, headers=api.admin), 413)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
        auth(jwt.encode({"sub": "alice", "exp": int(time.time()) - 10}, TEST_JWT_SECRET)),
        auth(jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, "wrong-secret-" * 3)),
        auth(jwt.encode({"sub": "alice"}, TEST_JWT_SECRET)),
    ],
    ids=["missing", "malformed", "wrong-scheme", "expired", "bad-signature", "no-exp"],
)
def test_requests_without_a_valid_token_are_401(api, headers):
    assert_problem(api.http.get("/history", headers=headers), 401)
    assert_problem(api.http.post("/reservations", json={}, headers=headers), 401)


def test_a_reservation_holds_seats_and_prices_them(api):
    musical = api.musical(seats=10, price=1200)
    response = api.reserve(musical["id"], seats=3)

    assert response.status_code == 201
    reservation = response.json()
    assert reservation["musicalId"] == musical["id"]
    assert reservation["customerId"] == "alice"
    assert reservation["seats"] == 3
    assert reservation["amount"] == 3600
    assert reservation["status"] in {"Reserved", "Confirmed"}
    assert reservation["createdAt"]
    assert api.http.get(f"/musicals/{musical['id']}").json()["availableSeats"] == 7


def test_reserving_an_unknown_musical_is_a_404(api):
    assert_problem(api.reserve("0" * 32), 404)
    assert_problem(api.reserve("not-even-an-id"), 404)


def test_reserving_more_than_what_is_left_is_a_409_and_holds_nothing(api):
    musical = api.musical(seats=3)
    assert_problem(api.reserve(musical["id"], seats=4), 409)
    assert api.http.get(f"/musicals/{musical['id']}").json()["availableSeats"] == 3


@pytest.mark.parametrize(
    "body",
    [
        {"musicalId": "m", "seats": 0},
        {"musicalId": "m", "seats": 11},
        {"musicalId": "m", "seats": "2"},
        {"musicalId": "m", "seats": 2.5},
        {"musicalId": "m", "seats": False},
        {"seats": 2},
        {"musicalId": 7, "seats": 2},
    ],
)
def test_an_invalid_reservation_is_a_422(api, body):
    assert_problem(api.http.post("/reservations", json=body, headers=api.alice), 422)


def test_an_idempotency_key_replays_the_first_reservation(api):
    musical = api.musical(seats=10)
    headers = api.alice | {"Idempotency-Key": "order-123"}

    first = api.http.post(
        "/reservations", json={"musicalId": musical["id"], "seats": 2}, headers=headers
    )
    again = api.http.post(
        "/reservations", json={"musicalId": musical["id"], "seats": 2}, headers=headers
    )

    assert first.status_code == 201
    assert again.status_code in (200, 201)
    assert again.json()["id"] == first.json()["id"]
    assert api.http.get(f"/musicals/{musical['id']}").json()["availableSeats"] == 8


def post_together(api, body: dict, headers: dict[str, str], times: int) -> list[httpx.Response]:
    """`times` clients post the same request at once (released together by a barrier)."""
    start = threading.Barrier(times)

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=api.host.base_url, timeout=30) as client:
            start.wait()
            return client.post("/reservations", json=body, headers=headers)

    with ThreadPoolExecutor(times) as pool:
        return list(pool.map(post, range(times)))


def test_parallel_requests_with_one_idempotency_key_for_the_last_seats_all_get_one_reservation(
    api,
):
    """The Idempotency-Key race (#15): twins that lose the last seats to each other must answer
    the reservation the winner placed, never 409."""
    for round_ in range(4):
        musical = api.musical(seats=3)
        assert api.reserve(musical["id"], seats=1, who=api.bob).status_code == 201
        headers = api.alice | {"Idempotency-Key": f"last-seats-{round_}-{musical['id']}"}

        answers = post_together(api, {"musicalId": musical["id"], "seats": 2}, headers, 8)

        assert {answer.status_code for answer in answers} <= {200, 201}, [
            (answer.status_code, answer.text) for answer in answers
        ]
        assert [answer.status_code for answer in answers].count(201) == 1
        ids = {answer.json()["id"] for answer in answers}
        assert len(ids) == 1
        (reservation_id,) = ids
        assert api.http.get(f"/musicals/{musical['id']}").json()["availableSeats"] == 0
        path = f"/reservations/{reservation_id}"
        assert api.http.get(path, headers=api.alice).json()["seats"] == 2
        eventually(lambda rid=reservation_id: api.status_of(rid) == "Confirmed", timeout=15)
        alices = eventually(
            lambda mid=musical["id"]: [
                item for item in api.history(api.alice).values() if item["musicalId"] == mid
            ],
            timeout=15,
        )
        assert [item["reservationId"] for item in alices] == [reservation_id]


def test_a_reservation_is_visible_to_its_customer_and_admins_only(api):
    reservation = api.reserve(api.musical()["id"]).json()
    path = f"/reservations/{reservation['id']}"

    assert api.http.get(path, headers=api.alice).json()["id"] == reservation["id"]
    assert api.http.get(path, headers=api.admin).status_code == 200
    assert_problem(api.http.get(path, headers=api.bob), 404)
    assert_problem(api.http.get("/reservations/unknown", headers=api.alice), 404)


def test_cancelling_gives_seats_back_and_repeats_harmlessly(api):
    musical = api.musical(seats=5)
    reservation = api.reserve(musical["id"], seats=2).json()
    path = f"/reservations/{reservation['id']}/cancel"

    assert_problem(api.http.post(path, headers=api.bob), 404)
    first = api.http.post(path, headers=api.alice)
    again = api.http.post(path, headers=api.alice)

    assert first.status_code == again.status_code == 200
    assert first.json()["status"] == again.json()["status"] == "Cancelled"
    assert api.http.get(f"/musicals/{musical['id']}").json()["availableSeats"] == 5


def test_unknown_routes_and_methods_are_problems(api):
    assert_problem(api.http.get("/nowhere"), 404)
    assert_problem(api.http.delete("/musicals"), 405)


def test_300_concurrent_attempts_on_60_seats_hold_exactly_60(api):
    musical = api.musical(seats=60)
    customers = [auth(api.host.signed_token(f"fan-{i}")) for i in range(5)]

    def attempt(i: int) -> int:
        with httpx.Client(base_url=api.host.base_url, timeout=30) as client:
            response = client.post(
                "/reservations",
                json={"musicalId": musical["id"], "seats": 1},
                headers=customers[i % len(customers)],
            )
            return response.status_code

    with ThreadPoolExecutor(64) as pool:
        statuses = list(pool.map(attempt, range(300)))

    assert set(statuses) <= {201, 409}
    assert statuses.count(201) == 60
    assert api.http.get(f"/musicals/{musical['id']}").json()["availableSeats"] == 0


def test_a_correlation_id_over_128_characters_is_replaced(api):
    sent = "trace-" + "x" * 300
    assert (
        api.http.get("/health", headers={"X-Correlation-Id": sent}).headers["X-Correlation-Id"]
        != sent
    )
