"""The Cosmos DB backend of the store contract suite.

Each test gets a fresh database on the process's Cosmos endpoint (tests/cosmos/server.py):
@vercel/cosmosdb-server started with node, or the emulator or account that COSMOS_ENDPOINT and
COSMOS_KEY name. On the test server, the cases it cannot serve are strict xfails, each with
its reason; against a real endpoint every case must pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol

import pytest

from shared.adapters.cosmos_store import CosmosDocumentStore
from shared.ports import OrderBy
from shared.topology import ContainerSpec
from tests.cosmos.server import (
    create_database,
    delete_database,
    external_endpoint,
    node_available,
    shared_endpoint,
)

NAME = "cosmos"

# Cosmos DB serves an ordered query only from a composite index of its exact ordering (the
# store appends the id tie-break): one per ordering the suite's queries use.
CONTRACT_ORDERINGS: dict[str, list[list[OrderBy]]] = {
    "contract_plain": [
        [OrderBy("meta.rank")],
        [OrderBy("n")],
        [OrderBy("n", descending=True)],
        [OrderBy("group", descending=True)],
        [OrderBy("group"), OrderBy("n", descending=True)],
    ],
}

MARKS = (
    pytest.mark.cosmos,
    # The test server's certificate is self-signed, and known to be.
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
    pytest.mark.skipif(
        external_endpoint() is None and not node_available(),
        reason="needs node (for @vercel/cosmosdb-server) or COSMOS_ENDPOINT",
    ),
)

_NO_BATCH_PATCH = "test server: no patch operation in a transactional batch (400)"
_BATCH_PARTITION = (
    "test server: batch read/upsert/replace/delete need a per-operation partition key, "
    "which the Python SDK sends only as the request header (500)"
)
_NOT_ATOMIC = "test server: a transactional batch is not atomic"
_MISSING_READ = "test server: a point read of a missing item answers 500, not 404"
_NO_TTL = "test server: TTL is not implemented (items never expire)"
_NO_CHANGE_FEED = "test server: the change feed is a stub (no _lsn positions)"
_ANY_TOKEN = "test server: takes a continuation token it never issued (Cosmos DB answers 400)"

# Test-server gaps by contract test name (every parametrization of that test).
TEST_SERVER_GAPS: dict[str, str] = {
    "test_reading_a_missing_item_raises_not_found": _MISSING_READ,
    "test_delete_removes_the_item": _MISSING_READ,
    "test_a_reservation_batch_commits_all_three_operations": _NO_BATCH_PATCH,
    "test_a_batch_rolls_back_the_patch_when_a_later_create_conflicts": _NO_BATCH_PATCH,
    "test_a_batch_whose_condition_fails_reports_a_precondition_at_its_index": _NO_BATCH_PATCH,
    "test_a_batch_reports_a_missing_item_as_not_found": _BATCH_PARTITION,
    "test_a_batch_returns_each_operations_result": _NO_BATCH_PATCH,
    "test_a_batch_sees_its_own_earlier_writes": _NO_BATCH_PATCH,
    "test_a_batch_takes_at_most_a_hundred_operations": _MISSING_READ,
    "test_a_batch_document_outside_the_batch_partition_is_a_value_error": _MISSING_READ,
    "test_fifty_racing_reservations_never_oversell": _NO_BATCH_PATCH,
    "test_racing_reservations_of_mixed_sizes_hold_exactly_what_succeeded": _NO_BATCH_PATCH,
    "test_an_awaited_batch_commits_all_or_nothing": _NO_BATCH_PATCH,
    "test_sixty_reservations_in_flight_on_one_loop_never_oversell": _NO_BATCH_PATCH,
    "test_a_seat_hold_commits_the_seats_the_counter_the_reservation_and_its_event": (
        _NO_BATCH_PATCH
    ),
    "test_a_conflict_on_a_held_seat_holds_nothing": _NO_BATCH_PATCH,
    "test_seats_given_back_in_one_batch_can_be_held_again": _NO_BATCH_PATCH,
    "test_fifty_racing_holds_of_one_seat_are_won_by_exactly_one": _NO_BATCH_PATCH,
    "test_an_item_with_its_own_ttl_expires_and_vanishes_everywhere": _NO_TTL,
    "test_an_expired_id_can_be_created_again": _NO_TTL,
    "test_the_container_default_ttl_applies_unless_the_item_overrides_it": _NO_TTL,
    "test_the_feed_lists_writes_oldest_first_with_rising_positions": _NO_CHANGE_FEED,
    "test_the_feed_holds_only_the_latest_version_of_an_item": _NO_CHANGE_FEED,
    "test_a_rewritten_item_reappears_after_a_consumers_position": _NO_CHANGE_FEED,
    "test_deleted_items_leave_the_feed": _NO_CHANGE_FEED,
    "test_the_feed_is_read_in_pages_of_max_items": _NO_CHANGE_FEED,
    "test_the_feed_spans_partitions_but_not_containers": _NO_CHANGE_FEED,
    "test_expired_items_leave_the_feed": _NO_CHANGE_FEED,
    "test_a_consumer_resuming_from_its_checkpoint_sees_each_later_change": (
        f"{_MISSING_READ}; {_NO_CHANGE_FEED}"
    ),
    "test_a_consumer_that_never_ran_is_at_zero": _MISSING_READ,
    "test_an_awaited_query_refuses_a_token_it_never_issued": _ANY_TOKEN,
    "test_many_items_are_read_at_once_in_the_order_asked_and_missing_ones_left_out": (
        _MISSING_READ
    ),
    "test_many_items_read_at_once_as_json_leave_missing_ones_out": _MISSING_READ,
    "test_a_checkpoint_is_kept_per_consumer_and_container": _MISSING_READ,
    "test_a_checkpoint_never_moves_backwards": _MISSING_READ,
}


class _Request(Protocol):
    """What `open_store` reads of the suite's BackendRequest."""

    @property
    def containers(self) -> Mapping[str, ContainerSpec]: ...


@contextmanager
def open_store(request: _Request) -> Iterator[CosmosDocumentStore]:
    """A store on a fresh database holding the suite's containers, dropped afterwards."""
    endpoint = shared_endpoint()
    database = create_database(
        endpoint, containers=request.containers, composite_indexes=CONTRACT_ORDERINGS
    )
    try:
        yield CosmosDocumentStore(
            endpoint.url,
            database,
            endpoint.key,
            verify_tls=endpoint.verify_tls,
            containers=request.containers,
        )
    finally:
        delete_database(endpoint, database)


def mark_test_server_gaps(items: list[pytest.Item]) -> None:
    """Mark the cases the test server cannot serve as strict xfails (not for a real endpoint)."""
    if external_endpoint() is not None:
        return
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec is not None else None
        if getattr(backend, "name", None) != NAME:
            continue
        reason = TEST_SERVER_GAPS.get(getattr(item, "originalname", item.name))
        if reason is not None:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
