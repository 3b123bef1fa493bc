"""SQL for conditions, ordering and keyset pagination over JSON bodies in SQLite.

Conditions are type-strict, as in Cosmos DB: a field only satisfies a condition when it exists
and holds a value of the same JSON type as the compared value (numbers are one type). The same
SQL evaluates patch filter predicates and query filters, so both agree.

Pages use keyset pagination: the continuation token holds the sort values and id of the last
item returned, so a page never repeats or skips items that were there before, even when other
items are inserted meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.adapters.document_paths import sqlite_json_path
from shared.ports import Condition, JsonScalar, OrderBy

SqlParams = list[Any]

_OPERATORS = {"=", "!=", "<", "<=", ">", ">="}
_NUMBER_TYPES = "('integer', 'real')"


def _json_types(value: JsonScalar) -> str:
    if isinstance(value, bool):
        return "('true', 'false')"
    if isinstance(value, int | float):
        return _NUMBER_TYPES
    if isinstance(value, str):
        return "('text')"
    raise ValueError(f"cannot compare with {value!r}: use a string, number or boolean")


def condition_sql(conditions: Sequence[Condition], column: str = "body") -> tuple[str, SqlParams]:
    """One SQL boolean expression true when every condition holds on the JSON in `column`."""
    sql, params = _condition_sql(tuple((c, type(c.value)) for c in conditions), column)
    return sql, list(params)


@functools.lru_cache(maxsize=512)
def _condition_sql(
    typed: tuple[tuple[Condition, type], ...], column: str
) -> tuple[str, tuple[Any, ...]]:
    """Built once per filter (a list's is the same on every request). Keyed with each value's
    type too: True == 1, but they are compared with values of different JSON types."""
    clauses: list[str] = []
    params: SqlParams = []
    for condition, _ in typed:
        if condition.op not in _OPERATORS:
            raise ValueError(f"unknown operator {condition.op!r}")
        path = sqlite_json_path(condition.path)
        if condition.value is None:
            holds = condition.op in {"=", "<=", ">="}
            clauses.append(f"(json_type({column}, ?) = 'null')" if holds else "0")
            params.extend([path] if holds else [])
            continue
        value = int(condition.value) if isinstance(condition.value, bool) else condition.value
        clauses.append(
            f"(json_type({column}, ?) IN {_json_types(condition.value)}"
            f" AND json_extract({column}, ?) {condition.op} ?)"
        )
        params.extend([path, path, value])
    return (" AND ".join(clauses) or "1"), tuple(params)


@dataclass(frozen=True)
class Ordering:
    """ORDER BY clause, the sort-key columns to select, and the keyset filter after a page."""

    select_sql: str
    select_params: SqlParams
    order_sql: str
    fingerprint: list[list[Any]]
    directions: list[bool]


def ordering(order_by: Sequence[OrderBy], column: str = "body") -> Ordering:
    """Built once per order (a list's is the same on every request); shared, never changed."""
    return _ordering(tuple(order_by), column)


@functools.lru_cache(maxsize=64)
def _ordering(order_by: tuple[OrderBy, ...], column: str) -> Ordering:
    select: list[str] = []
    params: SqlParams = []
    order: list[str] = []
    for index, key in enumerate(order_by):
        select.append(f"json_extract({column}, ?) AS k{index}")
        params.append(sqlite_json_path(key.path))
        order.append(f"k{index} {'DESC' if key.descending else 'ASC'}")
    order.append("id ASC")
    return Ordering(
        select_sql="".join(f", {s}" for s in select),
        select_params=params,
        order_sql=", ".join(order),
        fingerprint=[[key.path, key.descending] for key in order_by],
        directions=[key.descending for key in order_by],
    )


def _after(name: str, descending: bool, value: Any) -> tuple[str, SqlParams]:
    """Strictly after `value` in this key's order (SQLite sorts NULL first ascending)."""
    if value is None:
        return ("0", []) if descending else (f"{name} IS NOT NULL", [])
    if descending:
        return f"({name} < ? OR {name} IS NULL)", [value]
    return f"{name} > ?", [value]


def keyset_sql(
    directions: Sequence[bool], values: Sequence[Any], last_id: str
) -> tuple[str, SqlParams]:
    """Rows strictly after (values..., last_id) in the order of `ordering`."""
    alternatives: list[str] = []
    params: SqlParams = []
    equal_prefix: list[str] = []
    equal_params: SqlParams = []
    for index, (descending, value) in enumerate(zip(directions, values, strict=True)):
        name = f"k{index}"
        after, after_params = _after(name, descending, value)
        alternatives.append("(" + " AND ".join([*equal_prefix, after]) + ")")
        params.extend([*equal_params, *after_params])
        equal_prefix.append(f"{name} IS ?")
        equal_params.append(value)
    alternatives.append("(" + " AND ".join([*equal_prefix, "id > ?"]) + ")")
    params.extend([*equal_params, last_id])
    return "(" + " OR ".join(alternatives) + ")", params


def encode_token(fingerprint: list[list[Any]], values: Sequence[Any], last_id: str) -> str:
    raw = json.dumps({"o": fingerprint, "k": list(values), "id": last_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, fingerprint: list[list[Any]]) -> tuple[list[Any], str]:
    """The sort values and last id of a continuation token. Raises ValueError when invalid."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        decoded = json.loads(raw)
        values, last_id, order = decoded["k"], decoded["id"], decoded["o"]
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise ValueError("invalid continuation token") from error
    if order != fingerprint or not isinstance(last_id, str) or len(values) != len(fingerprint):
        raise ValueError("continuation token does not belong to this query")
    if not all(_is_sort_value(value) for value in values):
        raise ValueError("continuation token holds a value no document is sorted by")
    return values, last_id


def _is_sort_value(value: Any) -> bool:
    """A value SQLite can bind and compare: what `encode_token` writes, and nothing else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value < 2**63
    return value is None or isinstance(value, str | float | bool)
