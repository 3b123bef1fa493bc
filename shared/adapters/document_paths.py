"""Dotted field paths ("seats.available", "tags.0") and the patch operations that use them.

Backend-independent: the SQLite store applies patches in Python with these functions, and
turns the same paths into SQLite JSON paths for its queries.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from shared.ports import Document, Incr, PatchOperation, Remove, Set

MAX_PATCH_OPERATIONS = 10  # as in Cosmos DB

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INDEX = re.compile(r"\d+\Z")


@functools.lru_cache(maxsize=1024)
def split_path(path: str) -> tuple[str | int, ...]:
    """Split a dotted path into keys (str) and array indexes (int). Raises ValueError.

    Cached: the paths are the code's own, and every write and query splits them again."""
    if not path:
        raise ValueError("empty field path")
    segments: list[str | int] = []
    for part in path.split("."):
        if _KEY.match(part):
            segments.append(part)
        elif _INDEX.match(part) and segments:
            segments.append(int(part))
        else:
            raise ValueError(f"invalid field path {path!r}")
    return tuple(segments)


@functools.lru_cache(maxsize=1024)
def sqlite_json_path(path: str) -> str:
    """The SQLite JSON path ("$.a.b[0]") of a dotted path."""
    return "$" + "".join(
        f"[{segment}]" if isinstance(segment, int) else f".{segment}"
        for segment in split_path(path)
    )


def partition_key_segments(partition_key_path: str) -> tuple[str | int, ...]:
    """Segments of a container's partition key path such as "/musicalId"."""
    return split_path(partition_key_path.strip("/").replace("/", "."))


_MISSING = object()


def get_field(document: Any, segments: Sequence[str | int]) -> Any:
    """The value at `segments`, or `_MISSING`."""
    node = document
    for segment in segments:
        if isinstance(segment, int) and isinstance(node, list) and segment < len(node):
            node = node[segment]
            continue
        if isinstance(segment, str) and isinstance(node, dict) and segment in node:
            node = node[segment]
            continue
        return _MISSING
    return node


def has_field(document: Any, segments: Sequence[str | int]) -> bool:
    return get_field(document, segments) is not _MISSING


def _parent(document: Document, segments: Sequence[str | int], path: str) -> Any:
    parent = get_field(document, segments[:-1])
    leaf = segments[-1]
    if isinstance(leaf, int) and isinstance(parent, list):
        return parent
    if isinstance(leaf, str) and isinstance(parent, dict):
        return parent
    raise ValueError(f"patch path {path!r}: its parent does not exist")


def apply_patch(
    document: Document, operations: Sequence[PatchOperation], protected: Sequence[str]
) -> None:
    """Apply Cosmos-style patch operations in place. Invalid operations raise ValueError.

    `protected` names top-level fields that may not change (the id and the partition key).
    """
    if not 1 <= len(operations) <= MAX_PATCH_OPERATIONS:
        raise ValueError(f"a patch takes 1 to {MAX_PATCH_OPERATIONS} operations")
    for operation in operations:
        segments = split_path(operation.path)
        if segments[0] in protected:
            raise ValueError(f"patch may not change {operation.path!r}")
        parent = _parent(document, segments, operation.path)
        leaf = segments[-1]
        if isinstance(operation, Set):
            if isinstance(parent, list) and leaf >= len(parent):  # type: ignore[operator]
                raise ValueError(f"patch path {operation.path!r}: index out of range")
            parent[leaf] = operation.value
        elif isinstance(operation, Incr):
            _increment(parent, leaf, operation)
        elif isinstance(operation, Remove):
            if not has_field(parent, [leaf]):
                raise ValueError(f"patch remove: {operation.path!r} does not exist")
            del parent[leaf]
        else:
            raise TypeError(f"unknown patch operation {operation!r}")


def _increment(parent: Any, leaf: str | int, operation: Incr) -> None:
    if not _is_number(operation.value):
        raise ValueError("incr takes a number")
    current = get_field(parent, [leaf])
    if current is _MISSING:
        if isinstance(parent, list):
            raise ValueError(f"patch path {operation.path!r}: index out of range")
        parent[leaf] = operation.value
        return
    if not _is_number(current):
        raise ValueError(f"incr: {operation.path!r} is not a number")
    parent[leaf] = current + operation.value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
