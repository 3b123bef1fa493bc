"""The port's Conditions, OrderBy and patch operations in Cosmos DB's own terms.

Field paths are the port's dotted paths ("seats.available", "tags.0"); they become bracket
accessors (`c["seats"]["available"]`, `c["tags"][0]`) in SQL and JSON pointers
(`/seats/available`) in patch operations. Queries carry their values as parameters; a patch
filter predicate cannot, so there values are rendered as JSON literals, which Cosmos SQL
reads with the same escapes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from shared.adapters.document_paths import partition_key_segments, split_path
from shared.ports import Condition, Incr, JsonScalar, OrderBy, PatchOperation, Remove, Set

ALIAS = "c"
_OPERATORS = frozenset({"=", "!=", "<", "<=", ">", ">="})


def sql_accessor(path: str) -> str:
    """`c["a"]["b"][0]` for the dotted path "a.b.0"."""
    return ALIAS + _brackets(split_path(path))


def partition_key_accessor(partition_key_path: str) -> str:
    """`c["musicalId"]` for a container's partition key path "/musicalId"."""
    return ALIAS + _brackets(partition_key_segments(partition_key_path))


def _brackets(segments: Sequence[str | int]) -> str:
    return "".join(
        f"[{segment}]" if isinstance(segment, int) else f"[{json.dumps(segment)}]"
        for segment in segments
    )


def json_scalar(value: JsonScalar) -> JsonScalar:
    """`value`, checked to be a JSON scalar (no NaN, no infinity, no containers)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} is not a JSON number")
    if value is not None and not isinstance(value, str | int | float | bool):
        raise TypeError(f"conditions compare with JSON scalars, not {type(value).__name__}")
    return value


def sql_literal(value: JsonScalar) -> str:
    """A JSON scalar as a Cosmos SQL literal (JSON's escapes are Cosmos SQL's escapes)."""
    return json.dumps(json_scalar(value), ensure_ascii=True)


def filter_predicate(conditions: Sequence[Condition]) -> str | None:
    """The `filter_predicate` of a conditional patch, e.g. `FROM c WHERE c["x"] >= 1`."""
    if not conditions:
        return None
    clauses = " AND ".join(
        _comparison(condition, sql_literal(condition.value)) for condition in conditions
    )
    # The line break is only whitespace to Cosmos DB. @vercel/cosmosdb-server lower-cases any
    # predicate that starts with "from c where" (field names and string values included)
    # and takes every other form verbatim.
    return f"FROM {ALIAS}\nWHERE {clauses}"


def partition_query(
    partition_key_path: str,
    partition_key: str,
    where: Sequence[Condition],
    order_by: Sequence[OrderBy],
) -> tuple[str, list[dict[str, Any]]]:
    """A parameterized query over one partition: (query text, parameters).

    The partition key filter is explicit as well as passed to the SDK: gateways that do not
    scope queries by the partition key header (the test server) then still return one partition.
    """
    clauses = [f"{partition_key_accessor(partition_key_path)} = @pk"]
    parameters: list[dict[str, Any]] = [{"name": "@pk", "value": partition_key}]
    for index, condition in enumerate(where):
        name = f"@p{index}"
        clauses.append(_comparison(condition, name))
        parameters.append({"name": name, "value": json_scalar(condition.value)})
    query = f"SELECT * FROM {ALIAS} WHERE " + " AND ".join(clauses)
    if order_by:
        query += " ORDER BY " + ", ".join(
            f"{sql_accessor(order.path)} {'DESC' if order.descending else 'ASC'}"
            for order in with_id_tie_break(order_by)
        )
    return query, parameters


def with_id_tie_break(order_by: Sequence[OrderBy]) -> list[OrderBy]:
    """The ordering a query really uses: the port breaks ties by ascending id."""
    if order_by and order_by[-1].path == "id":
        return list(order_by)
    return [*order_by, OrderBy("id")]


def composite_index(order_by: Sequence[OrderBy]) -> list[dict[str, str]]:
    """The composite index entry (indexing policy `compositeIndexes`) an ordered query needs.

    Cosmos DB serves an ORDER BY on two or more paths only from a composite index of exactly
    those paths and directions; with the id tie-break every ordered query has two or more.
    """
    return [
        {
            "path": "/" + "/".join(str(segment) for segment in split_path(order.path)),
            "order": "descending" if order.descending else "ascending",
        }
        for order in with_id_tie_break(order_by)
    ]


def _comparison(condition: Condition, right_hand_side: str) -> str:
    if condition.op not in _OPERATORS:
        raise ValueError(f"unknown comparison {condition.op!r}")
    return f"{sql_accessor(condition.path)} {condition.op} {right_hand_side}"


def json_pointer(path: str) -> str:
    """`/a/b/0` for the dotted path "a.b.0" (keys are identifiers: nothing to escape)."""
    return "".join(f"/{segment}" for segment in split_path(path))


def patch_operations(operations: Sequence[PatchOperation]) -> list[dict[str, Any]]:
    """The port's patch operations as Cosmos patch operations (`set`, `incr`, `remove`)."""
    converted: list[dict[str, Any]] = []
    for operation in operations:
        pointer = json_pointer(operation.path)
        if isinstance(operation, Set):
            converted.append({"op": "set", "path": pointer, "value": operation.value})
        elif isinstance(operation, Incr):
            converted.append({"op": "incr", "path": pointer, "value": operation.value})
        elif isinstance(operation, Remove):
            converted.append({"op": "remove", "path": pointer})
        else:
            raise TypeError(f"unknown patch operation {operation!r}")
    return converted
