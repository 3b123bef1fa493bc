"""The API's input rules (openapi.yaml) at the function layer: correlation ids kept only in
their shape, bodies over 64 KiB refused from their declared length, continuation tokens sealed to
their list."""

from __future__ import annotations

import asyncio
import base64
import json

import azure.functions as func
import pytest

from shared.api.http import (
    MAX_BODY_BYTES,
    ApiRequest,
    PayloadTooLarge,
    correlation_id_of,
    kept_correlation_id,
)
from shared.domain.commands import RegisterMusical
from shared.domain.errors import InvalidContinuationToken
from shared.handlers.musicals import MusicalDeps, register_musical
from shared.handlers.musicals import list_musicals as list_musicals_async
from shared.handlers.paging import query_json_page, seal
from shared.ports import Condition, OrderBy
from shared.topology import CUSTOMER_CENTER, MUSICALS


@pytest.mark.parametrize(
    "sent",
    ["abc", "A-Z.a_z:0-9", "x" * 128, "0f8fad5b-d9cb-469f-a165-70867728950e"],
)
def test_a_correlation_id_of_the_contracts_shape_is_kept(sent):
    assert kept_correlation_id(sent) == sent


@pytest.mark.parametrize(
    "sent",
    [None, "", "x" * 129, "has space", "new\nline", 'quote"', "ümlaut", "semi;colon", "a/b"],
    ids=[
        "absent",
        "empty",
        "too-long",
        "space",
        "newline",
        "quote",
        "non-ascii",
        "semicolon",
        "slash",
    ],
)
def test_any_other_correlation_id_is_replaced_by_a_fresh_one(sent):
    kept = kept_correlation_id(sent)

    assert kept != sent
    assert len(kept) == 32
    assert kept != kept_correlation_id(sent)


def test_the_request_header_goes_through_the_same_rule():
    request = func.HttpRequest(
        "GET", "http://x/api/h", headers={"X-Correlation-Id": "a b"}, body=b""
    )

    assert correlation_id_of(request) != "a b"


class UnreadableBody(func.HttpRequest):
    """A request whose body must not be touched."""

    def get_body(self) -> bytes:
        raise AssertionError("the body was read")


def test_a_body_declared_over_64_kib_is_refused_before_it_is_read():
    raw = UnreadableBody(
        "POST",
        "http://x/api/musicals",
        headers={"Content-Length": str(MAX_BODY_BYTES + 1)},
        body=b"",
    )

    with pytest.raises(PayloadTooLarge):
        ApiRequest(raw=raw, correlation_id="c").body(RegisterMusical)


def test_a_body_over_64_kib_without_a_declared_length_is_refused_too():
    raw = func.HttpRequest("POST", "http://x/api/musicals", body=b" " * (MAX_BODY_BYTES + 1))

    with pytest.raises(PayloadTooLarge):
        ApiRequest(raw=raw, correlation_id="c").body(RegisterMusical)


def test_a_body_of_exactly_64_kib_is_read():
    body = json.dumps({"title": "t", "seats": 1, "price": 1}).encode()
    raw = func.HttpRequest("POST", "http://x/api/musicals", body=body.ljust(MAX_BODY_BYTES, b" "))

    assert ApiRequest(raw=raw, correlation_id="c").body(RegisterMusical).title == "t"


# --------------------------------------------------------------------------- continuation


def list_musicals(store, limit: int, token: str | None):
    page = asyncio.run(list_musicals_async(store, limit, token))
    return [json.loads(item) for item in page.items], page.continuation_token


@pytest.fixture
def catalog(store, clock):
    for n in range(3):
        register_musical(
            RegisterMusical(title=f"Show {n}", seats=5, price=1), MusicalDeps(store, clock)
        )
    return store


def first_token(store) -> str:
    _, token = list_musicals(store, 1, None)
    assert token is not None
    return token


def test_a_sealed_token_pages_on(catalog):
    first, token = list_musicals(catalog, 1, None)
    second, _ = list_musicals(catalog, 1, token)

    assert [m["title"] for m in first + second] == ["Show 0", "Show 1"]


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_an_altered_token_is_refused(catalog, where):
    token = first_token(catalog)
    index = {"start": 0, "middle": len(token) // 2, "end": len(token) - 1}[where]
    altered = token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]

    with pytest.raises(InvalidContinuationToken):
        list_musicals(catalog, 1, altered)


@pytest.mark.parametrize("token", ["garbage", ".", "a.b", "é.é", "%%%.00"])
def test_a_token_the_server_never_issued_is_refused(catalog, token):
    with pytest.raises(InvalidContinuationToken):
        list_musicals(catalog, 1, token)


def history_page(store, customer_id: str, token: str | None):
    return asyncio.run(
        query_json_page(
            store,
            CUSTOMER_CENTER.name,
            customer_id,
            ("id",),
            [Condition("musicalTitle", ">=", "")],
            [OrderBy("createdAt", descending=True), OrderBy("id")],
            1,
            token,
        )
    )


def test_another_lists_token_is_refused(catalog):
    with pytest.raises(InvalidContinuationToken):
        history_page(catalog, "alice", first_token(catalog))


def test_another_customers_history_token_is_refused(store):
    for n in range(2):
        store.create(
            CUSTOMER_CENTER.name,
            {
                "id": f"r{n}",
                "customerId": "alice",
                "musicalTitle": "t",
                "createdAt": f"2026-0{n + 1}",
            },
        )
    token = history_page(store, "alice", None).continuation
    assert token is not None

    with pytest.raises(InvalidContinuationToken):
        history_page(store, "mallory", token)


@pytest.mark.parametrize(
    "values",
    [[{"a": 1}], [[1, 2]], [2**80]],
    ids=["object", "array", "huge-integer"],
)
def test_a_forged_token_that_passes_the_seal_still_meets_the_stores_own_check(catalog, values):
    inner = json.dumps({"o": [["createdAt", False]], "k": values, "id": "x"})
    forged_inner = base64.urlsafe_b64encode(inner.encode()).decode().rstrip("=")
    scope = repr(
        (
            MUSICALS.name,
            "catalog",
            (Condition("type", "=", "catalogEntry"),),
            (OrderBy("createdAt"),),
        )
    ).encode()

    with pytest.raises(InvalidContinuationToken):
        list_musicals(catalog, 1, seal(forged_inner, scope))
