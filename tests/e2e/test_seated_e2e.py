"""Seated musicals end to end through `python -m devhost` (openapi.yaml, docs/seating.md): the
seat map, explicit seats, best available under contention, the cap per performance, cancellation
fees."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from tests.e2e.conftest import make_api
from tests.e2e.test_time_e2e import TIME_SETTINGS
from tests.support.devhost_process import DevHost, auth
from tests.support.eventually import eventually
from tests.support.fake_gateway import FakeGateway

pytestmark = pytest.mark.e2e

SEOUL = timezone(timedelta(hours=9))


def _hall(rows: int = 3, per_row: int = 4) -> dict:
    return {
        "grades": {"VIP": 150_000, "R": 100_000},
        "sections": [
            {"id": "A", "grade": "VIP", "rows": rows, "seatsPerRow": per_row},
            {"id": "B", "grade": "R", "rows": rows, "seatsPerRow": per_row},
            {"id": "C", "grade": "R", "rows": rows, "seatsPerRow": per_row},
        ],
    }


def _in_days(days: float, offset: timezone = SEOUL) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).astimezone(offset).isoformat()


def _seated(api, performances: list[str], **extra) -> dict:
    body = {"title": "Phantom", "venue": "Charlotte", **_hall(), "performances": performances}
    response = api.http.post("/musicals", json={**body, **extra}, headers=api.admin)
    assert response.status_code == 201, response.text
    return response.json()


def _reserve(api, who, **body) -> httpx.Response:
    return api.http.post("/reservations", json=body, headers=who)


def _all_at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Each call in a thread of its own, all released together: every request is in flight."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _listed(api, musical_id: str) -> dict:
    """The musical as GET /musicals lists it (paging through the catalog)."""
    params: dict[str, str | int] = {"limit": 100}
    while True:
        page = api.http.get("/musicals", params=params).json()
        found = [item for item in page["items"] if item["id"] == musical_id]
        if found or page["continuationToken"] is None:
            return found[0]
        params["continuationToken"] = page["continuationToken"]


def test_a_seated_musical_lists_its_performances_and_its_seat_map(api):
    musical = _seated(api, [_in_days(20), _in_days(21)])

    assert musical["totalSeats"] == 36
    assert musical["availableSeats"] is None
    assert musical["price"] is None
    first = musical["performances"][0]
    assert first["totalSeats"] == first["availableSeats"] == 36
    assert first["availableByGrade"] == {"VIP": 12, "R": 24}
    assert first["startsAt"].endswith("+09:00")
    shown = api.http.get(f"/musicals/{musical['id']}").json()
    assert [p["id"] for p in shown["performances"]] == [p["id"] for p in musical["performances"]]
    listed = _listed(api, musical["id"])
    assert [p["id"] for p in listed["performances"]] == [p["id"] for p in musical["performances"]]
    assert listed["grades"] == {"VIP": 150_000, "R": 100_000}
    performance = api.http.get(f"/performances/{first['id']}")
    assert performance.status_code == 200
    assert performance.json()["availableSeats"] == 36
    summary = api.http.get(f"/performances/{first['id']}/seats").json()
    assert [(s["id"], s["grade"], s["price"]) for s in summary["sections"]] == [
        ("A", "VIP", 150_000),
        ("B", "R", 100_000),
        ("C", "R", 100_000),
    ]
    section = api.http.get(f"/performances/{first['id']}/seats", params={"section": "B"}).json()
    assert len(section["seats"]) == 12
    assert section["seats"][0] == {"id": "B-1-1", "row": 1, "number": 1, "available": True}
    unknown = api.http.get(f"/performances/{first['id']}/seats", params={"section": "Z"})
    assert unknown.status_code == 404


def _sections(count: int = 1, **changes) -> list[dict]:
    return [
        {"id": f"S{n}", "grade": "R", "rows": 1, "seatsPerRow": 1, **changes} for n in range(count)
    ]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"sections": _sections(51)}, id="51 sections"),
        pytest.param({"sections": _sections(rows=0)}, id="rows 0"),
        pytest.param({"sections": _sections(seatsPerRow=101)}, id="seatsPerRow 101"),
        pytest.param({"sections": _sections(rows=True)}, id="rows as a boolean"),
        pytest.param({"title": "x" * 201}, id="title of 201"),
        pytest.param({"performances": ["tomorrow"]}, id="not a date-time"),
        pytest.param({"performances": [_in_days(-1)]}, id="in the past"),
    ],
)
def test_an_invalid_seated_musical_is_refused_with_422(api, changes):
    body = {"title": "Refused", **_hall(), "performances": [_in_days(30)], **changes}

    response = api.http.post("/musicals", json=body, headers=api.admin)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_explicit_seats_are_held_and_a_second_hold_names_the_taken_ones(api):
    performance = _seated(api, [_in_days(30)])["performances"][0]
    first = _reserve(api, api.alice, performanceId=performance["id"], seatIds=["A-1-2", "A-1-3"])
    assert first.status_code == 201, first.text
    reservation = first.json()
    assert reservation["seatIds"] == ["A-1-2", "A-1-3"]
    assert reservation["amount"] == 300_000
    assert reservation["performanceId"] == performance["id"]
    assert len(reservation["id"]) <= 64

    second = _reserve(api, api.bob, performanceId=performance["id"], seatIds=["A-1-3", "A-1-4"])

    assert second.status_code == 409
    assert second.json()["type"].endswith("/seats-taken")
    assert second.json()["seatIds"] == ["A-1-3"]
    seats = api.http.get(
        f"/performances/{performance['id']}/seats", params={"section": "A"}
    ).json()["seats"]
    free = {seat["id"] for seat in seats if seat["available"]}
    assert "A-1-4" in free
    assert not {"A-1-2", "A-1-3"} & free
    assert api.http.get(f"/performances/{performance['id']}").json()["availableSeats"] == 34


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"seatIds": ["A-1-1", "B-1-1"]}, 422),
        ({"seatIds": ["A-9-1"]}, 422),
        ({"grade": "Balcony", "seats": 2}, 422),
        ({"grade": "R", "seats": "2"}, 422),
    ],
)
def test_seats_that_the_hall_does_not_have_are_refused(api, body, status):
    performance = _seated(api, [_in_days(30)])["performances"][0]
    response = _reserve(api, api.alice, performanceId=performance["id"], **body)
    assert response.status_code == status, response.text
    assert api.http.get(f"/performances/{performance['id']}").json()["availableSeats"] == 36


def test_an_unknown_performance_is_404_and_a_general_admission_body_for_a_seated_musical_422(api):
    musical = _seated(api, [_in_days(30)])
    assert _reserve(api, api.alice, performanceId="0" * 24, seatIds=["A-1-1"]).status_code == 404
    assert api.http.get(f"/performances/{'0' * 24}").status_code == 404
    assert _reserve(api, api.alice, musicalId=musical["id"], seats=2).status_code == 422


def test_the_same_seat_raced_by_fifty_customers_is_won_by_exactly_one(api):
    performance = _seated(api, [_in_days(30)])["performances"][0]
    customers = [auth(api.host.signed_token(f"racer-{n}")) for n in range(50)]

    responses = _all_at_once(
        [
            lambda who=who: _reserve(api, who, performanceId=performance["id"], seatIds=["B-2-2"])
            for who in customers
        ]
    )

    assert Counter(r.status_code for r in responses) == {201: 1, 409: 49}
    refusals = [r.json() for r in responses if r.status_code == 409]
    assert all(problem["type"].endswith("/seats-taken") for problem in refusals)
    assert all(problem["seatIds"] == ["B-2-2"] for problem in refusals)
    assert api.http.get(f"/performances/{performance['id']}").json()["availableSeats"] == 35


def test_best_available_under_two_hundred_attempts_never_sells_a_seat_twice(api):
    performance = _seated(api, [_in_days(30)])["performances"][0]  # 24 R seats

    crowd = [auth(api.host.signed_token(f"crowd-{n}")) for n in range(200)]

    def attempt(who: dict[str, str]) -> httpx.Response:
        return _reserve(api, who, performanceId=performance["id"], grade="R", seats=2)

    with ThreadPoolExecutor(50) as pool:  # 50 requests in flight until the last ones
        responses = list(pool.map(attempt, crowd))

    won = [r.json() for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert {r.status_code for r in refused} == {409}
    assert all(r.json()["type"].endswith("/not-enough-seats") for r in refused)
    seats = [seat for reservation in won for seat in reservation["seatIds"]]
    assert len(seats) == len(set(seats)) == 24
    assert all(len({s.split("-")[0] for s in r["seatIds"]}) == 1 for r in won)
    view = api.http.get(f"/performances/{performance['id']}").json()
    assert view["availableByGrade"] == {"VIP": 12, "R": 0}
    assert view["availableSeats"] == 12
    _assert_listings_match_counters(api, performance["id"], view, held=set(seats))


def _assert_listings_match_counters(api, performance_id: str, view: dict, held: set[str]) -> None:
    """Each section's listing shows as held exactly its totalSeats - availableSeats, per section
    and per grade, no count is negative, and the held seats listed are `held`."""
    url = f"/performances/{performance_id}/seats"
    listed_held: set[str] = set()
    free_by_grade: Counter[str] = Counter()
    for section in api.http.get(url).json()["sections"]:
        seats = api.http.get(url, params={"section": section["id"]}).json()["seats"]
        taken = {seat["id"] for seat in seats if not seat["available"]}
        assert section["availableSeats"] >= 0
        assert len(seats) == section["totalSeats"]
        assert len(taken) == section["totalSeats"] - section["availableSeats"], section
        listed_held |= taken
        free_by_grade[section["grade"]] += section["availableSeats"]
    assert listed_held == held
    assert dict(free_by_grade) == view["availableByGrade"]
    assert all(count >= 0 for count in view["availableByGrade"].values())


def test_best_available_takes_the_nearest_row_with_adjacent_seats(api):
    performance = _seated(api, [_in_days(30)])["performances"][0]
    assert (
        _reserve(api, api.alice, performanceId=performance["id"], seatIds=["B-1-2"]).status_code
        == 201
    )
    assert (
        _reserve(api, api.alice, performanceId=performance["id"], seatIds=["C-1-2"]).status_code
        == 201
    )

    best = _reserve(api, api.bob, performanceId=performance["id"], grade="R", seats=2)

    assert best.status_code == 201, best.text
    assert best.json()["seatIds"] == ["B-1-3", "B-1-4"]
    assert best.json()["amount"] == 200_000


def test_cancel_gives_the_seats_back_at_once(api):
    performance = _seated(api, [_in_days(30)])["performances"][0]
    reservation = _reserve(
        api, api.alice, performanceId=performance["id"], seatIds=["C-3-1"]
    ).json()

    cancelled = api.http.post(f"/reservations/{reservation['id']}/cancel", headers=api.alice)

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "Cancelled"
    assert api.http.get(f"/performances/{performance['id']}").json()["availableSeats"] == 36
    again = _reserve(api, api.bob, performanceId=performance["id"], seatIds=["C-3-1"])
    assert again.status_code == 201


@pytest.mark.parametrize(("days", "fee"), [(8, 10_000), (11, 0)])
def test_a_confirmed_reservation_cancelled_keeps_the_fee_of_its_days_left(api, gateway, days, fee):
    gateway.set_mode("up")
    performance = _seated(api, [_in_days(days + 0.5)])["performances"][0]
    reservation = _reserve(
        api, api.alice, performanceId=performance["id"], seatIds=["B-1-1"]
    ).json()
    eventually(lambda: api.status_of(reservation["id"]) == "Confirmed", what="confirmation")

    cancelled = api.http.post(f"/reservations/{reservation['id']}/cancel", headers=api.alice).json()

    assert (cancelled["cancellationFee"], cancelled["refundAmount"]) == (fee, 100_000 - fee)
    refund = eventually(
        lambda: (
            next(
                (c for c in gateway.cancel_calls() if reservation["id"] in json.dumps(c.body)), None
            )
            or _cancel_of(gateway, reservation["id"])
        ),
        what="the refund at the gateway",
    )
    assert refund.body.get("cancelAmount", 100_000) == 100_000 - fee
    item = eventually(
        lambda: (
            (h := api.history(api.alice).get(reservation["id"]))
            and any(n["kind"] == "payment-cancelled" for n in h["notices"])
            and h
        ),
        what="the fee and the refund's notice in the history",
    )
    assert (item["cancellationFee"], item["refundAmount"]) == (fee, 100_000 - fee)
    assert item["seatIds"] == ["B-1-1"]
    assert item["performanceId"] == performance["id"]
    assert datetime.fromisoformat(item["startsAt"]) == datetime.fromisoformat(
        performance["startsAt"]
    )
    [notice] = [n["message"] for n in item["notices"] if n["kind"] == "payment-cancelled"]
    assert f"{100_000 - fee} of your payment of 100000 was refunded" in notice
    assert (f"a cancellation fee of {fee} was kept" in notice) == (fee > 0)


def _cancel_of(gateway, reservation_id: str):
    payment_key = gateway.payment_key_of(reservation_id)
    if payment_key is None:
        return None
    return next((c for c in gateway.cancel_calls() if payment_key in c.path), None)


def test_on_the_day_of_the_performance_it_is_too_late_to_cancel(api):
    now = datetime.now(UTC)
    # An offset that puts the local time near noon, so that an hour later is the same day.
    hours = max(-12, min(14, 12 - now.hour))
    offset = timezone(timedelta(hours=hours))
    performance = _seated(api, [(now + timedelta(hours=1)).astimezone(offset).isoformat()])[
        "performances"
    ][0]
    reservation = _reserve(
        api, api.alice, performanceId=performance["id"], seatIds=["A-1-1"]
    ).json()

    refused = api.http.post(f"/reservations/{reservation['id']}/cancel", headers=api.alice)

    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/too-late-to-cancel")
    assert api.status_of(reservation["id"]) in ("Reserved", "Confirmed")
    assert api.http.get(f"/performances/{performance['id']}").json()["availableSeats"] == 35


def test_the_cap_per_performance_holds_across_sections_and_comes_back_with_a_cancel(api):
    musical = _seated(api, [_in_days(30), _in_days(31)], maxSeatsPerCustomer=3)
    first, second = (p["id"] for p in musical["performances"])
    carol = auth(api.host.token("carol"))
    held = _reserve(api, carol, performanceId=first, seatIds=["A-1-1", "A-1-2"]).json()

    over = _reserve(api, carol, performanceId=first, seatIds=["B-1-1", "B-1-2"])
    assert over.status_code == 409
    assert over.json()["type"].endswith("/seat-limit")
    assert _reserve(api, carol, performanceId=second, grade="R", seats=3).status_code == 201
    assert _reserve(api, carol, performanceId=first, seatIds=["B-1-1"]).status_code == 201

    api.http.post(f"/reservations/{held['id']}/cancel", headers=carol)
    assert _reserve(api, carol, performanceId=first, grade="VIP", seats=2).status_code == 201


def test_the_cap_holds_under_parallel_requests_of_one_customer(api):
    performance = _seated(api, [_in_days(30)], maxSeatsPerCustomer=4)["performances"][0]
    dave = auth(api.host.token("dave"))

    def attempt(_: int) -> int:
        return _reserve(api, dave, performanceId=performance["id"], grade="R", seats=1).status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = Counter(pool.map(attempt, range(20)))

    assert statuses == {201: 4, 409: 16}


def test_an_idempotency_key_replays_the_first_seated_reservation(api):
    performance = _seated(api, [_in_days(30)])["performances"][0]
    headers = {**api.alice, "Idempotency-Key": "seated-order-1"}
    body = {"performanceId": performance["id"], "grade": "VIP", "seats": 2}

    first = api.http.post("/reservations", json=body, headers=headers)
    again = api.http.post("/reservations", json=body, headers=headers)

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert api.http.get(f"/performances/{performance['id']}").json()["availableSeats"] == 34


def test_an_unpaid_seated_reservation_expires_when_its_performance_starts_before_its_deadline(
    tmp_path,
):
    settings = {**TIME_SETTINGS, "PAYMENT_DEADLINE_SECONDS": "3600"}  # the start comes first
    with FakeGateway() as gateway:
        host = DevHost(tmp_path / "data", {"PAYMENT_GATEWAY_URL": gateway.url, **settings})
        api = make_api(host.start())
        try:
            starts = datetime.now(UTC) + timedelta(seconds=8)
            performance = _seated(api, [starts.astimezone(SEOUL).isoformat()])["performances"][0]
            gateway.set_mode("down")  # the payment stays Deferred
            placed = _reserve(
                api, api.alice, performanceId=performance["id"], seatIds=["B-1-1", "B-1-2"]
            )
            assert placed.status_code == 201, placed.text
            reservation = placed.json()
            assert reservation["status"] == "Reserved"

            # An hour before its payment deadline: only the start can have expired it.
            eventually(lambda: api.status_of(reservation["id"]) == "Expired", timeout=40)

            seats = api.http.get(f"/performances/{performance['id']}").json()
            assert seats["availableSeats"] == 36
            cancel = api.http.post(f"/reservations/{reservation['id']}/cancel", headers=api.alice)
            assert cancel.status_code == 409
            assert cancel.json()["type"].endswith("/expired")
        finally:
            host.close()
