"""The API's reads serve stored documents as they are: the same answers the models would give,
from one read or one query, and nothing of what the caller may not see."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from shared.domain.caller import Caller
from shared.domain.commands import RegisterMusical
from shared.domain.errors import NotFoundError
from shared.domain.models import Musical
from shared.handlers.musicals import MusicalDeps, list_musicals, read_musical, register_musical
from shared.handlers.reservation_reads import read_reservation
from shared.topology import MUSICALS
from tests.unit.test_reservations import place


class CountingStore:
    """The real store, counting the awaited reads made through it."""

    def __init__(self, store) -> None:
        self._store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        if name.endswith("_async"):
            self.calls.append(name)
        return method


def test_a_reservation_is_served_exactly_as_its_model_writes_it(store, musical, customer, clock):
    placed = place(store, musical, customer, clock.now()).reservation

    served = asyncio.run(read_reservation(placed.id, customer, store))

    assert json.dumps(served) == json.dumps(json.loads(placed.model_dump_json(by_alias=True)))


def test_a_reservation_is_read_by_its_owner_and_admins_only(store, musical, customer, clock):
    placed = place(store, musical, customer, clock.now()).reservation
    admin = Caller("boss", is_admin=True)

    assert asyncio.run(read_reservation(placed.id, admin, store))["id"] == placed.id
    with pytest.raises(NotFoundError):
        asyncio.run(read_reservation(placed.id, Caller("mallory"), store))


@pytest.mark.parametrize("name", ["not-an-id", "a musical's id"])
def test_only_a_reservation_is_served_as_one(store, musical, name):
    reservation_id = musical.id if name == "a musical's id" else name

    with pytest.raises(NotFoundError):
        asyncio.run(read_reservation(reservation_id, Caller("boss", is_admin=True), store))


def test_a_musical_is_served_exactly_as_its_model_writes_it(store, musical):
    served = asyncio.run(read_musical(musical.id, store))

    assert served == musical.to_api()
    assert list(served) == list(musical.to_api())


def test_a_stored_document_missing_a_field_is_served_through_the_model(store, musical):
    document = store.read(MUSICALS.name, musical.id, musical.id)
    del document["venue"]

    assert Musical.served(document) == {**musical.to_api(), "venue": None}


def test_the_catalog_is_one_query_and_one_read_of_its_musicals(store, clock):
    registered = [
        register_musical(
            RegisterMusical(title=f"Show {n}", seats=10, price=100), MusicalDeps(store, clock)
        )
        for n in range(3)
    ]
    counting = CountingStore(store)

    page = asyncio.run(list_musicals(counting, 50, None))

    assert json.loads(page.to_json()) == {
        "items": [musical.to_api() for musical in registered],
        "continuationToken": None,
    }
    assert [list(json.loads(item)) for item in page.items] == [
        list(musical.to_api()) for musical in registered
    ]
    assert counting.calls == ["query_json_async", "read_many_json_async"]


def test_a_listed_musical_missing_a_later_field_has_it_null_as_its_model_would(store, musical):
    document = store.read(MUSICALS.name, musical.id, musical.id)
    del document["maxSeatsPerCustomer"]
    store.replace(MUSICALS.name, document)

    page = asyncio.run(list_musicals(store, 50, None))

    assert [json.loads(item) for item in page.items] == [Musical.from_document(document).to_api()]


def test_a_catalog_line_without_its_musical_is_skipped(store, musical, clock):
    orphan = Musical.model_validate({**musical.to_api(), "id": "f" * 32})
    store.create(
        MUSICALS.name, {**orphan.to_document(), "type": "catalogEntry", "musicalId": "catalog"}
    )

    page = asyncio.run(list_musicals(store, 50, None))

    assert [json.loads(item)["id"] for item in page.items] == [musical.id]
