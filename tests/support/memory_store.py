"""An in-memory document store for unit tests: the Cosmos DB semantics of `shared.ports`
(ETags, conditional patches, transactional batches, TTL, keyset-paged queries, the change feed)
on Python dicts, so that tests of handlers and projection need no disk.

Held to the same contract suites as the embedded and Cosmos stores (tests/contract/), so that
unit tests can trust it. Test-only: never used by the app or devhost.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from devhost.embedded.sqlite_query import decode_token, encode_token
from shared import topology
from shared.adapters.document_paths import (
    apply_patch,
    get_field,
    partition_key_segments,
    split_path,
)
from shared.ports import (
    MAX_BATCH_OPERATIONS,
    BatchFailed,
    BatchOperation,
    Change,
    Condition,
    Conflict,
    Create,
    Delete,
    Document,
    JsonPage,
    NotFound,
    OrderBy,
    Page,
    Patch,
    PatchOperation,
    PreconditionFailed,
    Read,
    Replace,
    StoreError,
    Upsert,
)

MAX_PAGE_SIZE = 1000
_OPERATORS = {"=", "!=", "<", "<=", ">", ">="}
_FORBIDDEN_ID_CHARACTERS = set("/\\?#")
_MISSING = get_field({}, ["absent"])


@dataclass(frozen=True)
class _Item:
    body: str  # JSON text: every read gets a fresh copy, as from a real store
    etag: str
    expires_at: float | None
    lsn: int


@dataclass(frozen=True)
class _Container:
    name: str
    pk_segments: tuple[str | int, ...]
    protected: tuple[str, ...]
    default_ttl: int | None


Key = tuple[str, str, str]  # container, partition key, id


class MemoryDocumentStore:
    """DocumentStore, AsyncDocumentStore and ChangeFeed in memory. Thread-safe.

    `clock` gives epoch seconds (TTL and `_ts`), so tests can move time."""

    def __init__(
        self,
        containers: Mapping[str, topology.ContainerSpec] = topology.CONTAINERS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._containers = {name: _describe(spec) for name, spec in containers.items()}
        self._clock = clock
        self._lock = threading.RLock()
        self._items: dict[Key, _Item] = {}
        self._lsns: dict[str, int] = {}
        self._checkpoints: dict[tuple[str, str], int] = {}
        self._closed = False

    def close(self) -> None:
        """Further calls raise RuntimeError, as a closed real store's do."""
        self._closed = True

    # ------------------------------------------------------------------ DocumentStore

    def read(self, container: str, partition_key: str, id: str) -> Document:
        spec = self._container(container)
        with self._open():
            return self._read(spec, partition_key, id)

    def create(self, container: str, document: Document) -> Document:
        return self._single(container, Create(document))

    def upsert(self, container: str, document: Document, if_match: str | None = None) -> Document:
        return self._single(container, Upsert(document, if_match))

    def replace(self, container: str, document: Document, if_match: str | None = None) -> Document:
        return self._single(container, Replace(document, if_match))

    def patch(
        self,
        container: str,
        partition_key: str,
        id: str,
        operations: Sequence[PatchOperation],
        condition: Sequence[Condition] = (),
        if_match: str | None = None,
    ) -> Document:
        return self._single(container, Patch(id, operations, condition, if_match), partition_key)

    def delete(
        self, container: str, partition_key: str, id: str, if_match: str | None = None
    ) -> None:
        self._single(container, Delete(id, if_match), partition_key)

    def batch(
        self, container: str, partition_key: str, operations: Sequence[BatchOperation]
    ) -> list[Document | None]:
        spec = self._container(container)
        if not 1 <= len(operations) <= MAX_BATCH_OPERATIONS:
            raise ValueError(f"a batch takes 1 to {MAX_BATCH_OPERATIONS} operations")
        for operation in operations:
            _validate(spec, operation, partition_key)
        with self._open():
            before = (dict(self._items), dict(self._lsns))
            results: list[Document | None] = []
            for index, operation in enumerate(operations):
                try:
                    results.append(self._apply(spec, partition_key, operation))
                except StoreError as cause:
                    self._items, self._lsns = before
                    raise BatchFailed(index, cause) from cause
                except BaseException:
                    self._items, self._lsns = before
                    raise
            return results

    def query(
        self,
        container: str,
        partition_key: str,
        where: Sequence[Condition] = (),
        order_by: Sequence[OrderBy] = (),
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page:
        spec = self._container(container)
        if isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be 1..{MAX_PAGE_SIZE}")
        _validate_conditions(where)
        fingerprint = [[key.path, key.descending] for key in order_by]
        paths = [split_path(key.path) for key in order_by]
        directions = [key.descending for key in order_by]
        after = None
        if continuation is not None:
            values, last_id = decode_token(continuation, fingerprint)
            after = _sort_key(directions, values, last_id)
        with self._open():
            now = self._clock()
            rows = []
            for (name, pk, id), item in self._items.items():
                if name != spec.name or pk != partition_key or not _live(item, now):
                    continue
                document = json.loads(item.body)
                if not _holds(document, where):
                    continue
                values = [_sort_value(get_field(document, path)) for path in paths]
                key = _sort_key(directions, values, id)
                if after is None or after < key:
                    rows.append((key, values, id, document))
        rows.sort(key=lambda row: row[0])
        items = [row[3] for row in rows[:limit]]
        token = None
        if len(rows) > limit:
            _, values, last_id, _ = rows[limit - 1]
            token = encode_token(fingerprint, values, last_id)
        return Page(items=items, continuation=token)

    # ------------------------------------------------------------------ AsyncDocumentStore

    async def read_async(self, container: str, partition_key: str, id: str) -> Document:
        return self.read(container, partition_key, id)

    async def create_async(self, container: str, document: Document) -> Document:
        return self.create(container, document)

    async def replace_async(
        self, container: str, document: Document, if_match: str | None = None
    ) -> Document:
        return self.replace(container, document, if_match)

    async def delete_async(
        self, container: str, partition_key: str, id: str, if_match: str | None = None
    ) -> None:
        self.delete(container, partition_key, id, if_match)

    async def batch_async(
        self, container: str, partition_key: str, operations: Sequence[BatchOperation]
    ) -> list[Document | None]:
        return self.batch(container, partition_key, operations)

    async def query_async(
        self,
        container: str,
        partition_key: str,
        where: Sequence[Condition] = (),
        order_by: Sequence[OrderBy] = (),
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page:
        return self.query(container, partition_key, where, order_by, limit, continuation)

    async def read_many_async(
        self, container: str, keys: Sequence[tuple[str, str]]
    ) -> list[Document]:
        found = []
        for partition_key, id in keys:
            try:
                found.append(self.read(container, partition_key, id))
            except NotFound:
                continue
        return found

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
        page = self.query(container, partition_key, where, order_by, limit, continuation)
        return JsonPage(items=_json_texts(page.items, fields), continuation=page.continuation)

    async def read_many_json_async(
        self, container: str, keys: Sequence[tuple[str, str]], fields: Sequence[str]
    ) -> list[str]:
        return _json_texts(await self.read_many_async(container, keys), fields)

    # ------------------------------------------------------------------ ChangeFeed

    def read_changes(self, container: str, after_lsn: int, max_items: int = 100) -> list[Change]:
        spec = self._container(container)
        with self._open():
            now = self._clock()
            changes = sorted(
                (item.lsn, item.body)
                for (name, _, _), item in self._items.items()
                if name == spec.name and item.lsn > after_lsn and _live(item, now)
            )
        return [Change(lsn, json.loads(body)) for lsn, body in changes[:max_items]]

    def get_checkpoint(self, container: str, lease_prefix: str) -> int:
        spec = self._container(container)
        with self._open():
            return self._checkpoints.get((spec.name, lease_prefix), 0)

    def set_checkpoint(self, container: str, lease_prefix: str, lsn: int) -> None:
        spec = self._container(container)
        with self._open():
            key = (spec.name, lease_prefix)
            self._checkpoints[key] = max(self._checkpoints.get(key, 0), lsn)

    def delete_checkpoint(self, container: str, lease_prefix: str) -> None:
        """Forget a consumer's checkpoint (a rebuild replays its feed from the beginning)."""
        spec = self._container(container)
        with self._open():
            self._checkpoints.pop((spec.name, lease_prefix), None)

    # ------------------------------------------------------------------ one write

    def _single(
        self, container: str, operation: BatchOperation, partition_key: str | None = None
    ) -> Any:
        spec = self._container(container)
        partition_key = _validate(spec, operation, partition_key)
        with self._open():
            return self._apply(spec, partition_key, operation)

    def _apply(self, spec: _Container, pk: str, operation: BatchOperation) -> Document | None:
        """Run one validated operation (call with the lock held)."""
        now = self._clock()
        if isinstance(operation, Read):
            return self._read(spec, pk, operation.id)
        if isinstance(operation, Create | Upsert | Replace):
            document = operation.document
            current = self._current(spec, pk, document["id"], now)
            if isinstance(operation, Create) and current is not None:
                raise Conflict(f"{spec.name}/{pk}/{document['id']} exists")
            if isinstance(operation, Replace) and current is None:
                raise NotFound(f"{spec.name}/{pk}/{document['id']}")
            if_match = None if isinstance(operation, Create) else operation.if_match
            _check_etag(current, if_match, document["id"])
            return self._write(spec, pk, dict(document), now)
        current = self._current(spec, pk, operation.id, now)
        if current is None:
            raise NotFound(f"{spec.name}/{pk}/{operation.id}")
        _check_etag(current, operation.if_match, operation.id)
        if isinstance(operation, Delete):
            del self._items[spec.name, pk, operation.id]
            return None
        document = json.loads(current.body)
        if not _holds(document, operation.condition):
            raise PreconditionFailed(f"patch condition does not hold on {operation.id}")
        apply_patch(document, operation.operations, spec.protected)
        return self._write(spec, pk, document, now)

    def _write(self, spec: _Container, pk: str, document: Document, now: float) -> Document:
        etag = f'"{random.getrandbits(128):032x}"'
        document["_etag"] = etag
        document["_ts"] = int(now)
        expires_at = _expires_at(spec, document, now)
        try:
            body = json.dumps(document, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ValueError(f"document is not valid JSON: {error}") from error
        self._lsns[spec.name] = lsn = self._lsns.get(spec.name, 0) + 1
        self._items[spec.name, pk, document["id"]] = _Item(body, etag, expires_at, lsn)
        return json.loads(body)

    def _read(self, spec: _Container, pk: str, id: str) -> Document:
        current = self._current(spec, pk, id, self._clock())
        if current is None:
            raise NotFound(f"{spec.name}/{pk}/{id}")
        return json.loads(current.body)

    def _current(self, spec: _Container, pk: str, id: str, now: float) -> _Item | None:
        item = self._items.get((spec.name, pk, id))
        return item if item is not None and _live(item, now) else None

    def _container(self, name: str) -> _Container:
        try:
            return self._containers[name]
        except KeyError:
            raise ValueError(f"unknown container {name!r}") from None

    @contextmanager
    def _open(self) -> Iterator[None]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the store is closed")
            yield


# --------------------------------------------------------------------------- validation


def _describe(spec: topology.ContainerSpec) -> _Container:
    segments = partition_key_segments(spec.partition_key)
    protected = ("id", str(segments[0])) if len(segments) == 1 else ("id",)
    return _Container(spec.name, segments, protected, spec.default_ttl)


def _validate(spec: _Container, operation: BatchOperation, partition_key: str | None) -> str:
    """Check an operation before it runs; its partition key (taken from its document when
    `partition_key` is None, else the document must be in that partition)."""
    if isinstance(operation, Create | Upsert | Replace):
        document = operation.document
        if not isinstance(document, dict):
            raise ValueError("a document is a JSON object")
        _check_id(document.get("id"))
        document_pk = get_field(document, spec.pk_segments)
        if not isinstance(document_pk, str):
            raise ValueError(f"document needs a string partition key at {spec.pk_segments!r}")
        if partition_key is not None and document_pk != partition_key:
            raise ValueError("every batch document must be in the batch's partition")
        return document_pk
    if isinstance(operation, Patch):
        _validate_conditions(operation.condition)
    elif not isinstance(operation, Delete | Read):
        raise ValueError(f"unknown batch operation {operation!r}")
    if partition_key is None:
        raise ValueError(f"{type(operation).__name__} needs a partition key")
    return partition_key


def _check_id(id: Any) -> None:
    if not isinstance(id, str) or not id or len(id) > 255:
        raise ValueError("a document needs an `id`: a string of 1 to 255 characters")
    if _FORBIDDEN_ID_CHARACTERS.intersection(id):
        raise ValueError("an id may not contain '/', '\\', '?' or '#'")


def _validate_conditions(conditions: Sequence[Condition]) -> None:
    for condition in conditions:
        split_path(condition.path)
        if condition.op not in _OPERATORS:
            raise ValueError(f"unknown operator {condition.op!r}")
        if condition.value is not None and not isinstance(condition.value, str | int | float):
            raise ValueError(f"cannot compare with {condition.value!r}")


def _check_etag(current: _Item | None, if_match: str | None, id: str) -> None:
    if if_match is not None and (current is None or current.etag != if_match):
        raise PreconditionFailed(f"etag mismatch on {id}")


def _expires_at(spec: _Container, document: Document, now: float) -> float | None:
    if spec.default_ttl is None:
        return None
    ttl = document.get("ttl", spec.default_ttl)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl == 0 or ttl < -1:
        raise ValueError("ttl must be -1 or a positive integer of seconds")
    return None if ttl == -1 else now + ttl


def _live(item: _Item, now: float) -> bool:
    return item.expires_at is None or item.expires_at > now


# --------------------------------------------------------------------------- conditions, order


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


def _holds(document: Document, conditions: Sequence[Condition]) -> bool:
    """Type-strict, as in Cosmos DB: a field satisfies a condition only when it exists and holds
    a value of the compared value's JSON type (numbers are one type)."""
    for condition in conditions:
        value = get_field(document, split_path(condition.path))
        if condition.value is None:
            if condition.op not in {"=", "<=", ">="} or value is _MISSING or value is not None:
                return False
            continue
        if value is _MISSING or _json_kind(value) != _json_kind(condition.value):
            return False
        if not _compare(value, condition.op, condition.value):
            return False
    return True


def _compare(left: Any, op: str, right: Any) -> bool:
    match op:
        case "=":
            return bool(left == right)
        case "!=":
            return bool(left != right)
        case "<":
            return bool(left < right)
        case "<=":
            return bool(left <= right)
        case ">":
            return bool(left > right)
        case _:
            return bool(left >= right)


def _sort_value(value: Any) -> Any:
    """A field's value as a sort key (missing = null; objects and arrays as their JSON)."""
    if value is _MISSING:
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value


class _Ordered:
    """One sort value: null first, then numbers (booleans as 0/1), then text; reversed when
    descending."""

    __slots__ = ("descending", "rank")

    def __init__(self, value: Any, descending: bool) -> None:
        kind = _json_kind(value)
        self.rank = (0, 0) if kind == "null" else (2, value) if kind == "string" else (1, value)
        self.descending = descending

    def __lt__(self, other: _Ordered) -> bool:
        return other.rank < self.rank if self.descending else self.rank < other.rank

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Ordered) and self.rank == other.rank

    __hash__ = None  # type: ignore[assignment]


def _sort_key(directions: Sequence[bool], values: Sequence[Any], id: str) -> tuple[Any, ...]:
    return (*(_Ordered(v, d) for v, d in zip(values, directions, strict=True)), id)


def _json_texts(items: Sequence[Document], fields: Sequence[str]) -> list[str]:
    """Each item's object of `fields` as JSON text (a missing field is null)."""
    return [
        json.dumps(
            {field: item.get(field) for field in fields}, separators=(",", ":"), ensure_ascii=False
        )
        for item in items
    ]
