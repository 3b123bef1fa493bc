"""How the port's conditions, orderings and patches are written in Cosmos DB's terms."""

from __future__ import annotations

import pytest

from shared.adapters.cosmos_sql import (
    composite_index,
    filter_predicate,
    partition_query,
    patch_operations,
    sql_literal,
)
from shared.ports import Condition, Incr, OrderBy, Remove, Set


def test_a_patch_filter_names_fields_by_bracket_and_values_by_json_literal() -> None:
    predicate = filter_predicate(
        [Condition("availableSeats", ">=", 2), Condition("status", "=", "Reserved")]
    )

    assert predicate == 'FROM c\nWHERE c["availableSeats"] >= 2 AND c["status"] = "Reserved"'


def test_no_conditions_means_no_filter_predicate() -> None:
    assert filter_predicate([]) is None


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (7, "7"),
        (-1.5, "-1.5"),
        ('say "hi"', r'"say \"hi\""'),
        ("back\\slash", r'"back\\slash"'),
        ("line\nbreak", r'"line\nbreak"'),
        ("ünï", r'"\u00fcn\u00ef"'),
    ],
    ids=repr,
)
def test_values_become_escaped_sql_literals(value: object, literal: str) -> None:
    assert sql_literal(value) == literal  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [1], {"a": 1}], ids=repr)
def test_what_is_not_a_json_scalar_cannot_become_a_literal(value: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        sql_literal(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["a b", 'a"]', "a.b-c", "", "0"])
def test_field_paths_that_are_not_identifiers_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="path"):
        filter_predicate([Condition(path, "=", 1)])


def test_an_unknown_operator_is_refused_rather_than_pasted_into_sql() -> None:
    with pytest.raises(ValueError, match="comparison"):
        filter_predicate([Condition("a", "= 1 OR 1 =", 1)])  # type: ignore[arg-type]


def test_a_query_is_parameterized_and_scoped_to_its_partition() -> None:
    query, parameters = partition_query(
        "/musicalId", "m1", [Condition("type", "=", "reservation"), Condition("seats", ">", 1)], []
    )

    assert query == (
        'SELECT * FROM c WHERE c["musicalId"] = @pk AND c["type"] = @p0 AND c["seats"] > @p1'
    )
    assert parameters == [
        {"name": "@pk", "value": "m1"},
        {"name": "@p0", "value": "reservation"},
        {"name": "@p1", "value": 1},
    ]


def test_an_ordered_query_breaks_ties_by_ascending_id() -> None:
    query, _ = partition_query(
        "/customerId", "c1", [], [OrderBy("updatedAt", descending=True), OrderBy("meta.rank")]
    )

    assert query.endswith('ORDER BY c["updatedAt"] DESC, c["meta"]["rank"] ASC, c["id"] ASC')


def test_an_ordering_that_ends_with_id_gets_no_second_id() -> None:
    query, _ = partition_query("/pk", "p", [], [OrderBy("id", descending=True)])

    assert query.endswith('ORDER BY c["id"] DESC')


def test_the_composite_index_matches_the_ordering_the_query_uses() -> None:
    assert composite_index([OrderBy("updatedAt", descending=True)]) == [
        {"path": "/updatedAt", "order": "descending"},
        {"path": "/id", "order": "ascending"},
    ]


def test_patch_operations_use_json_pointers() -> None:
    assert patch_operations([Incr("seats.free", -2), Set("tags.0", "x"), Remove("note")]) == [
        {"op": "incr", "path": "/seats/free", "value": -2},
        {"op": "set", "path": "/tags/0", "value": "x"},
        {"op": "remove", "path": "/note"},
    ]
