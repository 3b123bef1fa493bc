"""JSON answers: a model in its camelCase API form, anything else as compact JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import azure.functions as func

from shared.api.http import ApiRequest, json_response
from shared.domain.models import Reservation, ReservationStatus

AT = datetime(2026, 12, 2, 5, 0, 0, tzinfo=UTC)


def request() -> ApiRequest:
    raw = func.HttpRequest("GET", "http://localhost/api/x", headers={}, body=b"")
    return ApiRequest(raw=raw, correlation_id="corr-1")


def reservation() -> Reservation:
    return Reservation(
        id="m" * 32 + "-" + "a" * 28,
        musical_id="m" * 32,
        musical_title="Kinky Boots — 東京",
        customer_id="alice",
        seats=2,
        amount=300,
        status=ReservationStatus.RESERVED,
        correlation_id="corr-1",
        created_at=AT,
        updated_at=AT,
        _etag='"stored-etag"',
    )


def test_a_model_is_answered_as_its_stored_document_without_the_store_s_fields():
    placed = reservation()
    response = json_response(placed, request(), 201, {"Location": "/api/reservations/x"})
    body = json.loads(response.get_body())
    document = placed.to_document()
    del document["type"]
    assert body == document
    assert body["musicalTitle"] == "Kinky Boots — 東京"
    assert body["createdAt"] == "2026-12-02T05:00:00.000000Z"
    assert "_etag" not in body
    assert "etag" not in body
    assert response.status_code == 201
    assert response.mimetype == "application/json"
    assert response.headers["X-Correlation-Id"] == "corr-1"
    assert response.headers["Location"] == "/api/reservations/x"


def test_plain_data_is_answered_as_compact_json():
    response = json_response({"status": "ok", "items": [1, 2]}, request())
    assert response.get_body() == b'{"status":"ok","items":[1,2]}'
    assert response.status_code == 200
