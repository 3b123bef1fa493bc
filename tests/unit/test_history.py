"""GET /history: the caller's items only, newest first, paged, from one partition of the view."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest

from devhost.tokens import issue_token
from shared import bootstrap
from shared.api.problems import problem_for
from shared.domain.caller import Caller
from shared.domain.errors import InvalidContinuationToken
from shared.domain.events import Event, EventType, PaymentFacts, ReservationFacts
from shared.handlers.history import HistoryPage, list_history
from shared.ports import Condition, JsonPage, OrderBy
from shared.projection.history_item import HistoryItem
from shared.settings import Settings
from shared.topology import CUSTOMER_CENTER, PAYMENTS
from tests.support.projection import project

START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def placed(customer_id: str, number: int, created_at: datetime) -> dict[str, Any]:
    reservation_id = f"{'a' * 32}-{number:016x}"
    facts = ReservationFacts(
        reservation_id=reservation_id,
        musical_id="a" * 32,
        musical_title=f"Show {number}",
        customer_id=customer_id,
        seats=1,
        amount=100,
        created_at=created_at,
    )
    event = Event(
        event_id=f"{reservation_id}.placed",
        event_type=EventType.RESERVATION_PLACED,
        correlation_id="corr",
        occurred_at=created_at,
        payload=facts.to_json_dict(),
    )
    return event.to_document("musicalId", facts.musical_id)


def seed(store, customer_id: str, count: int, first: int = 0) -> list[str]:
    """`count` reservations half a second apart (so whole seconds and fractions of the same
    second meet); their ids, newest first."""
    documents = [
        placed(customer_id, first + n, START + timedelta(milliseconds=500 * n))
        for n in range(count)
    ]
    project(documents, store)
    return [d["payload"]["reservationId"] for d in reversed(documents)]


def history(caller: Caller, store, limit: int, token: str | None) -> HistoryPage:
    return asyncio.run(list_history(caller, store, limit, token))


def items_of(page: HistoryPage) -> list[dict[str, Any]]:
    return json.loads(page.to_json())["items"]


def all_pages(store, caller: Caller, limit: int) -> tuple[list[str], int]:
    ids: list[str] = []
    pages, token = 0, None
    while True:
        page = history(caller, store, limit, token)
        ids += [item["reservationId"] for item in items_of(page)]
        pages += 1
        token = page.continuation_token
        if token is None:
            return ids, pages


class RecordingStore:
    """The real store, with a log of every call made through it."""

    def __init__(self, store) -> None:
        self._store = store
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str):
        method = getattr(self._store, name)

        def recorded(*args: Any, **kwargs: Any):
            self.calls.append((name, args, kwargs))
            return method(*args, **kwargs)

        return recorded

    async def query_json_async(
        self,
        container: str,
        partition_key: str,
        fields: Sequence[str],
        where: Sequence[Condition] = (),
        order_by: Sequence[OrderBy] = (),
        limit: int = 100,
        continuation: str | None = None,
    ) -> JsonPage:
        self.calls.append(("query_json_async", (container, partition_key), {}))
        return await self._store.query_json_async(
            container, partition_key, fields, where, order_by, limit, continuation
        )


def test_items_come_newest_first_across_pages_without_gaps_or_repeats(store):
    expected = seed(store, "alice", 7)

    ids, pages = all_pages(store, Caller("alice"), limit=3)

    assert ids == expected
    assert pages == 3


def test_items_placed_at_the_same_moment_are_ordered_by_id(store):
    same_moment = [placed("alice", n, START) for n in (3, 1, 2)]
    project(same_moment, store)

    ids, _ = all_pages(store, Caller("alice"), limit=2)

    assert ids == sorted(d["payload"]["reservationId"] for d in same_moment)


def test_a_customer_never_sees_another_customers_items(store):
    alices = seed(store, "alice", 3)
    bobs = seed(store, "bob", 4, first=100)

    page = history(Caller("alice"), store, 50, None)
    bob_token = history(Caller("bob"), store, 1, None).continuation_token

    assert [item["reservationId"] for item in items_of(page)] == alices
    assert not {item["reservationId"] for item in items_of(page)} & set(bobs)
    assert page.customer_id == "alice"
    with pytest.raises(InvalidContinuationToken):
        history(Caller("alice"), store, 50, bob_token)


def test_the_history_is_one_query_of_the_callers_partition_of_the_view(store):
    seed(store, "alice", 3)
    recording = RecordingStore(store)

    history(Caller("alice"), recording, 50, None)

    assert recording.calls == [("query_json_async", (CUSTOMER_CENTER.name, "alice"), {})]


def test_a_reservation_known_only_from_its_payment_is_not_listed_yet(store):
    seed(store, "alice", 1)
    payment_first = Event(
        event_id="r-early.payment-approved",
        event_type=EventType.PAYMENT_APPROVED,
        correlation_id="corr",
        occurred_at=START + timedelta(hours=1),
        payload=PaymentFacts(
            reservation_id="r-early", musical_id="a" * 32, customer_id="alice", amount=100
        ).to_json_dict(),
    ).to_document("reservationId", "r-early")
    project([payment_first], store)

    listed = history(Caller("alice"), store, 50, None)

    assert store.read(CUSTOMER_CENTER.name, "alice", "r-early")["paymentStatus"] == "Approved"
    assert "r-early" not in [item["reservationId"] for item in items_of(listed)]
    assert len(listed.items) == 1


def test_a_continuation_token_that_this_list_never_returned_is_refused(store):
    seed(store, "alice", 2)

    with pytest.raises(InvalidContinuationToken) as refused:
        history(Caller("alice"), store, 50, "not-a-token")

    assert problem_for(refused.value).type.status == 422


def test_an_item_is_served_in_the_contract_shape(store):
    seed(store, "alice", 1)

    item = items_of(history(Caller("alice"), store, 50, None))[0]

    assert set(item) == {
        "reservationId",
        "musicalId",
        "musicalTitle",
        "seats",
        "amount",
        "reservationStatus",
        "paymentStatus",
        "notices",
        "timeline",
        "createdAt",
        "updatedAt",
        "performanceId",
        "startsAt",
        "seatIds",
        "cancellationFee",
        "refundAmount",
    }
    assert item["seatIds"] is None  # general admission: the seated fields are null
    assert item["reservationStatus"] == "Reserved"
    assert item["paymentStatus"] is None
    assert item["timeline"] == [
        {"type": "ReservationPlaced", "at": "2026-11-25T09:00:00.000000Z", "kind": None}
    ]


def test_an_item_is_served_as_the_projections_model_would_answer_it(store):
    seed(store, "alice", 2)
    stored = store.query(CUSTOMER_CENTER.name, "alice").items

    served = items_of(history(Caller("alice"), store, 50, None))

    expected = [HistoryItem.from_document(document).to_api() for document in stored]
    assert sorted(served, key=lambda item: item["reservationId"]) == expected


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture
def settings() -> Settings:
    return Settings(OUTERPARK_LOCAL_DEV=True)


@pytest.fixture
def services(store, settings, monkeypatch: pytest.MonkeyPatch) -> bootstrap.Services:
    """The app's composition root, over the test's store."""
    services = bootstrap.Services(settings)
    services.__dict__["store"] = store
    monkeypatch.setattr(bootstrap, "_services", services)
    return services


def get_history(headers: dict[str, str], **params: str) -> func.HttpResponse:
    from functions.history import show_history

    request = func.HttpRequest("GET", "/api/history", headers=headers, params=params, body=b"")
    return asyncio.run(show_history(request))


def bearer(subject: str, settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(subject, settings=settings)}"}


def test_get_history_answers_the_callers_page_and_a_token_for_the_next(services, store, settings):
    expected = seed(store, "alice", 3)
    seed(store, "bob", 2, first=100)

    first = get_history(bearer("alice", settings), limit="2")
    body = json.loads(first.get_body())
    rest = json.loads(
        get_history(
            bearer("alice", settings), continuationToken=body["continuationToken"]
        ).get_body()
    )

    assert first.status_code == 200
    assert body["customerId"] == "alice"
    assert [i["reservationId"] for i in body["items"] + rest["items"]] == expected
    assert rest["continuationToken"] is None


def test_get_history_without_a_token_is_unauthorized(services):
    assert get_history({}).status_code == 401


@pytest.mark.parametrize(
    ("params", "status"),
    [({"continuationToken": "garbage!"}, 422), ({"limit": "0"}, 422), ({"limit": "101"}, 422)],
)
def test_get_history_refuses_bad_paging_with_a_problem(services, settings, params, status):
    response = get_history(bearer("alice", settings), **params)

    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert json.loads(response.get_body())["status"] == status


def test_get_history_never_reads_the_write_side(services, store, settings):
    seed(store, "alice", 2)
    recording = RecordingStore(store)
    services.__dict__["store"] = recording

    get_history(bearer("alice", settings))

    assert [call[1][0] for call in recording.calls] == [CUSTOMER_CENTER.name]
    assert PAYMENTS.name not in {call[1][0] for call in recording.calls}
