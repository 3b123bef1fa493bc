"""openapi.yaml against what devhost actually serves.

Schemathesis generates requests from the spec (valid and invalid) and checks every answer: no
5xx, only documented status codes, documented content types, bodies and headers that match the
schemas. A second test proves every documented status code can really be produced.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from tests.e2e.conftest import Api
from tests.support.eventually import eventually
from tests.support.fake_gateway import FakeGateway

pytestmark = pytest.mark.e2e

SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"
NEW_YORK = timezone(timedelta(hours=-5))
schema = schemathesis.openapi.from_path(SPEC)

# Produced by API Management's rate limit (infra/policies/api.xml), never by the app itself.
GATEWAY_ONLY = {"429"}
# Need a host in another state than this module's; each is reached by the test named.
REACHED_ELSEWHERE = {
    # tests/e2e/test_resilience_e2e.py: RESERVATIONS_WHEN_PAYMENT_DOWN=reject, breaker open
    ("POST", "/reservations", "503"),
    # tests/unit/test_readiness.py: the store or the bus unreachable
    ("GET", "/health/ready", "503"),
    # tests/unit/test_auth_not_configured.py: deployed without token settings (never devhost)
    ("POST", "/musicals", "503"),
    ("GET", "/reservations/{id}", "503"),
    ("POST", "/reservations/{id}/cancel", "503"),
    ("GET", "/history", "503"),
}


OPERATIONS = {result.ok().label: result.ok() for result in schema.get_all_operations()}
# Nothing in these requests can be made schema-invalid (no body, no constrained parameter a URL
# can carry), so they get valid inputs only.
NOTHING_TO_INVALIDATE = {
    "GET /health",
    "GET /health/ready",
    "GET /musicals/{id}",
    "GET /performances/{id}",
}
CASES = [
    (label, mode)
    for label in sorted(OPERATIONS)
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or label not in NOTHING_TO_INVALIDATE
]


@pytest.mark.parametrize(
    ("label", "mode"), CASES, ids=[f"{label} {mode.value}" for label, mode in CASES]
)
def test_every_generated_request_gets_a_documented_answer(
    label: str, mode: GenerationMode, api: Api
) -> None:
    operation = OPERATIONS[label]
    headers = api.admin if label == "POST /musicals" else api.alice
    declared_query = {parameter.name for parameter in operation.query}

    @settings(
        max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=operation.as_strategy(mode))
    def answered_as_documented(case) -> None:
        query = case.query or {}
        excluded = []
        # Continuation tokens are opaque strings: schema-valid, yet only the ones a list returned
        # are accepted (422 otherwise), so "schema-valid request rejected" does not apply.
        if "continuationToken" in query:
            excluded.append(positive_data_acceptance)
        # Unknown query parameters are ignored, as HTTP APIs do: a request whose only fault is
        # one is not "invalid data accepted".
        if set(query) - declared_query:
            excluded.append(negative_data_rejection)
        # A seated musical has rules no schema states (each section's grade among the grades,
        # unique section ids, at most 100000 seats, performances in the future): a 422 for a
        # schema-valid body is right there.
        if label == "POST /musicals" and isinstance(case.body, dict) and "grades" in case.body:
            excluded.append(positive_data_acceptance)
        case.call_and_validate(
            base_url=api.host.base_url, headers=headers, excluded_checks=excluded
        )

    answered_as_documented()


def documented_statuses() -> set[tuple[str, str, str]]:
    document = yaml.safe_load(SPEC.read_text())
    return {
        (method.upper(), path, status)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status in operation["responses"]
        if status not in GATEWAY_ONLY
    } - REACHED_ELSEWHERE


def test_every_documented_status_code_is_reachable(api: Api, gateway: FakeGateway) -> None:
    http = api.http
    gateway.set_mode("decline")
    declined = api.reserve(api.musical(seats=1)["id"], seats=1).json()
    eventually(lambda: api.status_of(declined["id"]) == "Rejected", what="the declined reservation")
    gateway.set_mode("up")
    musical = api.musical(seats=5, price=100)
    mine = api.reserve(musical["id"], seats=1).json()
    big = b'{"title": "' + b"x" * 70_000 + b'"}'
    hall = {
        "grades": {"R": 100},
        "sections": [{"id": "A", "grade": "R", "rows": 1, "seatsPerRow": 2}],
    }
    in_a_month = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    seated = http.post(
        "/musicals",
        json={"title": "Seated", **hall, "performances": [in_a_month]},
        headers=api.admin,
    ).json()
    performance_id = seated["performances"][0]["id"]

    recipes = {
        ("GET", "/health", "200"): lambda: http.get("/health"),
        ("GET", "/health/ready", "200"): lambda: http.get("/health/ready"),
        ("GET", "/musicals", "200"): lambda: http.get("/musicals"),
        ("GET", "/musicals", "422"): lambda: http.get("/musicals", params={"limit": 0}),
        ("POST", "/musicals", "201"): lambda: http.post(
            "/musicals", json={"title": "T", "seats": 1, "price": 1}, headers=api.admin
        ),
        ("POST", "/musicals", "400"): lambda: http.post(
            "/musicals", content=b"{", headers=api.admin
        ),
        ("POST", "/musicals", "401"): lambda: http.post("/musicals", json={}),
        ("POST", "/musicals", "403"): lambda: http.post("/musicals", json={}, headers=api.alice),
        ("POST", "/musicals", "413"): lambda: http.post(
            "/musicals", content=big, headers=api.admin
        ),
        ("POST", "/musicals", "422"): lambda: http.post("/musicals", json={}, headers=api.admin),
        ("GET", "/musicals/{id}", "200"): lambda: http.get(f"/musicals/{musical['id']}"),
        ("GET", "/musicals/{id}", "404"): lambda: http.get("/musicals/nope"),
        ("GET", "/performances/{id}", "200"): lambda: http.get(f"/performances/{performance_id}"),
        ("GET", "/performances/{id}", "404"): lambda: http.get("/performances/nope"),
        ("GET", "/performances/{id}/seats", "200"): lambda: http.get(
            f"/performances/{performance_id}/seats", params={"section": "A"}
        ),
        ("GET", "/performances/{id}/seats", "404"): lambda: http.get(
            f"/performances/{performance_id}/seats", params={"section": "Z"}
        ),
        ("POST", "/reservations", "201"): lambda: api.reserve(musical["id"], seats=1),
        ("POST", "/reservations", "200"): lambda: [
            http.post(
                "/reservations",
                json={"musicalId": musical["id"], "seats": 1},
                headers=api.bob | {"Idempotency-Key": "again"},
            )
            for _ in range(2)
        ][-1],
        ("POST", "/reservations", "400"): lambda: http.post(
            "/reservations", content=b"[", headers=api.alice
        ),
        ("POST", "/reservations", "401"): lambda: http.post("/reservations", json={}),
        ("POST", "/reservations", "404"): lambda: api.reserve("0" * 32),
        ("POST", "/reservations", "409"): lambda: api.reserve(musical["id"], seats=10),
        ("POST", "/reservations", "413"): lambda: http.post(
            "/reservations", content=big, headers=api.alice
        ),
        ("POST", "/reservations", "422"): lambda: http.post(
            "/reservations", json={"seats": 1}, headers=api.alice
        ),
        ("GET", "/reservations/{id}", "200"): lambda: http.get(
            f"/reservations/{mine['id']}", headers=api.alice
        ),
        ("GET", "/reservations/{id}", "401"): lambda: http.get(f"/reservations/{mine['id']}"),
        ("GET", "/reservations/{id}", "404"): lambda: http.get(
            f"/reservations/{mine['id']}", headers=api.bob
        ),
        ("POST", "/reservations/{id}/cancel", "200"): lambda: http.post(
            f"/reservations/{mine['id']}/cancel", headers=api.alice
        ),
        ("POST", "/reservations/{id}/cancel", "401"): lambda: http.post(
            f"/reservations/{mine['id']}/cancel"
        ),
        ("POST", "/reservations/{id}/cancel", "404"): lambda: http.post(
            f"/reservations/{mine['id']}/cancel", headers=api.bob
        ),
        ("POST", "/reservations/{id}/cancel", "409"): lambda: http.post(
            f"/reservations/{declined['id']}/cancel", headers=api.alice
        ),
        ("GET", "/history", "200"): lambda: http.get("/history", headers=api.alice),
        ("GET", "/history", "401"): lambda: http.get("/history"),
        ("GET", "/history", "422"): lambda: http.get(
            "/history", params={"limit": 500}, headers=api.alice
        ),
    }
    documented = documented_statuses()
    unreached = documented - set(recipes)
    undocumented = set(recipes) - documented

    assert not undocumented, f"recipes for statuses the spec does not document: {undocumented}"
    for (method, path, status), call in recipes.items():
        assert str(call().status_code) == status, (method, path, status)
    assert not unreached, f"documented statuses no recipe produces: {sorted(unreached)}"


def test_the_answers_about_a_seated_musical_match_their_schemas(
    api: Api, gateway: FakeGateway
) -> None:
    """The fuzzing above hardly ever names a real performance: these are the 200 and 201
    answers about a real seated musical, each validated against its operation's schema."""
    http = api.http
    gateway.set_mode("up")
    hall = {
        "grades": {"VIP": 150_000, "R": 100_000},
        "sections": [
            {"id": "A", "grade": "VIP", "rows": 2, "seatsPerRow": 3},
            {"id": "B", "grade": "R", "rows": 2, "seatsPerRow": 3},
        ],
    }
    in_a_month = (datetime.now(UTC) + timedelta(days=30)).astimezone(NEW_YORK).isoformat()
    created = http.post(
        "/musicals",
        json={"title": "Seated", **hall, "performances": [in_a_month], "maxSeatsPerCustomer": 4},
        headers=api.admin,
    )
    performance_id = created.json()["performances"][0]["id"]
    seats = f"/performances/{performance_id}/seats"
    summary = http.get(seats)
    section = http.get(seats, params={"section": "A"})
    explicit = http.post(
        "/reservations",
        json={"performanceId": performance_id, "seatIds": ["A-1-2", "A-1-3"]},
        headers=api.alice,
    )
    best = http.post(
        "/reservations",
        json={"performanceId": performance_id, "grade": "R", "seats": 2},
        headers=api.bob,
    )
    explicit_read = http.get(f"/reservations/{explicit.json()['id']}", headers=api.alice)
    best_read = http.get(f"/reservations/{best.json()['id']}", headers=api.bob)
    cancelled = http.post(f"/reservations/{best.json()['id']}/cancel", headers=api.bob)
    answers = [
        ("POST /musicals", created, 201),
        ("GET /musicals/{id}", http.get(f"/musicals/{created.json()['id']}"), 200),
        ("GET /performances/{id}", http.get(f"/performances/{performance_id}"), 200),
        ("GET /performances/{id}/seats", summary, 200),
        ("GET /performances/{id}/seats", section, 200),
        ("POST /reservations", explicit, 201),
        ("POST /reservations", best, 201),
        ("GET /reservations/{id}", explicit_read, 200),
        ("GET /reservations/{id}", best_read, 200),
        ("POST /reservations/{id}/cancel", cancelled, 200),
    ]

    for label, response, status in answers:
        assert response.status_code == status, (label, response.text)
        OPERATIONS[label].validate_response(response)
    # What the schemas leave open (an anyOf; the fields of seated reservations only) is there.
    assert "sections" in summary.json()
    assert {"section", "grade", "price", "seats"} <= section.json().keys()
    for reservation in (explicit, best, explicit_read, best_read, cancelled):
        assert {"performanceId", "startsAt", "seatIds"} <= reservation.json().keys()
    assert cancelled.json()["cancellationFee"] == 0
    assert cancelled.json()["refundAmount"] == best.json()["amount"]
