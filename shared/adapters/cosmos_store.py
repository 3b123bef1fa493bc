"""The DocumentStore, AsyncDocumentStore and ChangeFeed ports over Azure Cosmos DB for NoSQL.

The blocking operations use the sync SDK; the awaited ones (the HTTP functions' hot paths, the
history projection) use the async SDK (`azure.cosmos.aio`, over aiohttp) on the caller's event
loop, with no thread per call. One sync CosmosClient per endpoint per process (module-level
cache), and one async client per event loop (an aiohttp session belongs to its loop; the
Functions worker runs one): a client holds the connection pool, the account metadata and the
container properties, and is expensive to build. In Azure it authenticates with the Function
App's managed identity; an account key is only for emulators and test servers (`COSMOS_KEY`).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.cosmos import ContainerProxy, CosmosClient
from azure.cosmos import aio as cosmos_aio
from azure.cosmos.exceptions import CosmosBatchOperationError, CosmosHttpResponseError

from shared.adapters import cosmos_sql
from shared.adapters.azure_credentials import async_azure_credential, azure_credential
from shared.adapters.document_paths import get_field, partition_key_segments
from shared.optimistic import retry_on_race
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
    TooManyRequests,
    Upsert,
)
from shared.settings import Settings
from shared.topology import CONTAINERS, LEASES, ContainerSpec

# Throttling (429) is retried by the SDK, honouring the server's retry-after, for at most this
# many attempts and this many seconds in all; then TooManyRequests reaches the use case, whose
# trigger retries later. Short limits keep a throttled HTTP request from hanging.
THROTTLE_RETRY_ATTEMPTS = 5
THROTTLE_RETRY_MAX_WAIT_SECONDS = 5
CONNECTION_RETRY_ATTEMPTS = 3
CONNECTION_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 15

Credential = str | TokenCredential
_ENCODE_JSON = json.JSONEncoder(separators=(",", ":")).encode
AsyncCredential = str | AsyncTokenCredential

_clients: dict[tuple[str, bool], CosmosClient] = {}
_clients_lock = threading.Lock()


_CLIENT_OPTIONS: dict[str, Any] = {
    "connection_timeout": CONNECTION_TIMEOUT_SECONDS,
    "read_timeout": READ_TIMEOUT_SECONDS,
    "retry_total": CONNECTION_RETRY_ATTEMPTS,
    "retry_throttle_total": THROTTLE_RETRY_ATTEMPTS,
    "retry_throttle_backoff_max": THROTTLE_RETRY_MAX_WAIT_SECONDS,
}


def cosmos_client(
    endpoint: str, credential: Credential, *, verify_tls: bool = True
) -> CosmosClient:
    """The process's client for `endpoint` (the first credential given for it is kept)."""
    key = (endpoint, verify_tls)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = CosmosClient(
                endpoint, credential=credential, connection_verify=verify_tls, **_CLIENT_OPTIONS
            )
            _clients[key] = client
        return client


def store_error(status_code: int | None, message: str = "") -> Exception:
    """The port's error for a Cosmos status code (400 is the caller's mistake: ValueError)."""
    detail = f"Cosmos DB answered {status_code}: {message}".rstrip(": ")
    match status_code:
        case 404:
            return NotFound(detail)
        case 409:
            return Conflict(detail)
        case 412:
            return PreconditionFailed(detail)
        case 429:
            return TooManyRequests(detail)
        case 400:
            return ValueError(detail)
        case _:
            return StoreError(detail)


@contextmanager
def _mapped_errors(*, missing_means_precondition: bool = False) -> Iterator[None]:
    try:
        yield
    except CosmosHttpResponseError as error:
        status = error.status_code
        if missing_means_precondition and status == 404:
            status = 412
        raise store_error(status, _first_line(error.message)) from error


def _first_line(message: str | None) -> str:
    return (message or "").strip().splitlines()[0] if message and message.strip() else ""


def _if_match(etag: str | None) -> dict[str, Any]:
    if etag is None:
        return {}
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


def _document(item: Any) -> Document:
    return dict(item)


class CosmosDocumentStore:
    """DocumentStore, AsyncDocumentStore and ChangeFeed over one Cosmos DB database of
    `shared.topology` containers. `async_credential` authenticates the awaited operations
    (an async token credential; by default `credential` when it is an account key)."""

    def __init__(
        self,
        endpoint: str,
        database: str,
        credential: Credential,
        *,
        verify_tls: bool = True,
        containers: Mapping[str, ContainerSpec] = CONTAINERS,
        async_credential: AsyncCredential | None = None,
    ) -> None:
        if async_credential is None and not isinstance(credential, str):
            raise ValueError("a token credential needs its async counterpart (async_credential)")
        self._database = cosmos_client(
            endpoint, credential, verify_tls=verify_tls
        ).get_database_client(database)
        self._specs = containers
        self._proxies: dict[str, ContainerProxy] = {}
        self._async = _AsyncClients(
            endpoint,
            database,
            async_credential if async_credential is not None else str(credential),
            verify_tls,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> CosmosDocumentStore:
        if settings.cosmos_endpoint is None:
            raise ValueError("CosmosDBConnection__accountEndpoint is not set")
        if settings.cosmos_key is not None:
            key = settings.cosmos_key.get_secret_value()
            credential: Credential = key
            async_credential: AsyncCredential = key
        else:
            credential = azure_credential(settings.managed_identity_client_id)
            async_credential = async_azure_credential(settings.managed_identity_client_id)
        return cls(
            settings.cosmos_endpoint,
            settings.cosmos_database,
            credential,
            verify_tls=settings.cosmos_verify_tls,
            async_credential=async_credential,
        )

    def _spec(self, name: str) -> ContainerSpec:
        if name == LEASES.name:  # checkpoints live there, whatever the store serves
            return LEASES
        try:
            return self._specs[name]
        except KeyError:
            raise ValueError(f"unknown container {name!r}") from None

    def _checked(self, container: str, document: Document) -> Document:
        """`document`, once it has the string id and partition key every Cosmos item needs.

        Cosmos itself would file a document without its partition key field under an
        "undefined" partition, which no port method can address.
        """
        if not isinstance(document.get("id"), str) or not document["id"]:
            raise ValueError("a document needs a non-empty string id")
        key_path = self._spec(container).partition_key
        if not isinstance(get_field(document, partition_key_segments(key_path)), str):
            raise ValueError(f"a document needs a string partition key at {key_path}")
        return document

    def _container(self, name: str) -> ContainerProxy:
        self._spec(name)
        proxy = self._proxies.get(name)
        if proxy is None:
            proxy = self._proxies[name] = self._database.get_container_client(name)
        return proxy

    # ------------------------------------------------------------------- single items

    def read(self, container: str, partition_key: str, id: str) -> Document:
        with _mapped_errors():
            return _document(self._container(container).read_item(id, partition_key))

    def create(self, container: str, document: Document) -> Document:
        with _mapped_errors():
            return _document(
                self._container(container).create_item(self._checked(container, document))
            )

    def upsert(self, container: str, document: Document, if_match: str | None = None) -> Document:
        if if_match is not None:
            # A conditional upsert only makes sense for an existing item: Cosmos answers 404
            # for a missing one, the port 412 (the ETag cannot match).
            with _mapped_errors(missing_means_precondition=True):
                return self._replace(container, document, if_match)
        with _mapped_errors():
            return _document(
                self._container(container).upsert_item(self._checked(container, document))
            )

    def replace(self, container: str, document: Document, if_match: str | None = None) -> Document:
        with _mapped_errors():
            return self._replace(container, document, if_match)

    def _replace(self, container: str, document: Document, if_match: str | None) -> Document:
        self._checked(container, document)
        return _document(
            self._container(container).replace_item(document["id"], document, **_if_match(if_match))
        )

    def patch(
        self,
        container: str,
        partition_key: str,
        id: str,
        operations: Sequence[PatchOperation],
        condition: Sequence[Condition] = (),
        if_match: str | None = None,
    ) -> Document:
        with _mapped_errors():
            return _document(
                self._container(container).patch_item(
                    id,
                    partition_key,
                    cosmos_sql.patch_operations(operations),
                    filter_predicate=cosmos_sql.filter_predicate(condition),
                    **_if_match(if_match),
                )
            )

    def delete(
        self, container: str, partition_key: str, id: str, if_match: str | None = None
    ) -> None:
        with _mapped_errors():
            self._container(container).delete_item(id, partition_key, **_if_match(if_match))

    # ------------------------------------------------------------------- batch

    def batch(
        self, container: str, partition_key: str, operations: Sequence[BatchOperation]
    ) -> list[Document | None]:
        if not operations:
            return []
        request = self._batch_request(container, partition_key, operations)
        with _mapped_batch_errors(operations):
            results = self._container(container).execute_item_batch(request, partition_key)
        return _batch_results(operations, results)

    def _batch_request(
        self, container: str, partition_key: str, operations: Sequence[BatchOperation]
    ) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
        """The SDK's batch operations, once every document is checked to be in the batch's
        partition."""
        if len(operations) > MAX_BATCH_OPERATIONS:
            raise ValueError(f"a batch takes at most {MAX_BATCH_OPERATIONS} operations")
        key_segments = partition_key_segments(self._spec(container).partition_key)
        for index, operation in enumerate(operations):
            if isinstance(operation, Create | Upsert | Replace):
                self._checked(container, operation.document)
                if get_field(operation.document, key_segments) != partition_key:
                    raise ValueError(
                        f"batch operation {index}: the document is outside the batch partition"
                    )
        return [_batch_operation(operation) for operation in operations]

    # ------------------------------------------------------------------- queries

    def query(
        self,
        container: str,
        partition_key: str,
        where: Sequence[Condition] = (),
        order_by: Sequence[OrderBy] = (),
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page:
        proxy = self._container(container)
        query, parameters = self._query(container, partition_key, where, order_by, limit)
        with _mapped_errors():
            pages = proxy.query_items(
                query,
                parameters=parameters,
                partition_key=partition_key,
                max_item_count=limit,
            ).by_page(continuation)
            items = [_document(item) for item in next(pages, [])]
            token = pages.continuation_token  # type: ignore[attr-defined]  # ItemPaged's pager
            return Page(items=items, continuation=token or None)

    def _query(
        self,
        container: str,
        partition_key: str,
        where: Sequence[Condition],
        order_by: Sequence[OrderBy],
        limit: int,
    ) -> tuple[str, list[dict[str, Any]]]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        return cosmos_sql.partition_query(
            self._spec(container).partition_key, partition_key, where, order_by
        )

    # ------------------------------------------------------------------- awaited (async SDK)

    async def read_async(self, container: str, partition_key: str, id: str) -> Document:
        proxy = await self._async.container(self._spec(container).name)
        with _mapped_errors():
            return _document(await proxy.read_item(id, partition_key))

    async def create_async(self, container: str, document: Document) -> Document:
        proxy = await self._async.container(self._spec(container).name)
        with _mapped_errors():
            return _document(await proxy.create_item(self._checked(container, document)))

    async def replace_async(
        self, container: str, document: Document, if_match: str | None = None
    ) -> Document:
        self._checked(container, document)
        proxy = await self._async.container(self._spec(container).name)
        with _mapped_errors():
            return _document(
                await proxy.replace_item(document["id"], document, **_if_match(if_match))
            )

    async def delete_async(
        self, container: str, partition_key: str, id: str, if_match: str | None = None
    ) -> None:
        proxy = await self._async.container(self._spec(container).name)
        with _mapped_errors():
            await proxy.delete_item(id, partition_key, **_if_match(if_match))

    async def batch_async(
        self, container: str, partition_key: str, operations: Sequence[BatchOperation]
    ) -> list[Document | None]:
        if not operations:
            return []
        request = self._batch_request(container, partition_key, operations)
        proxy = await self._async.container(self._spec(container).name)
        with _mapped_batch_errors(operations):
            results = await proxy.execute_item_batch(request, partition_key)
        return _batch_results(operations, results)

    async def query_async(
        self,
        container: str,
        partition_key: str,
        where: Sequence[Condition] = (),
        order_by: Sequence[OrderBy] = (),
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page:
        query, parameters = self._query(container, partition_key, where, order_by, limit)
        proxy = await self._async.container(self._spec(container).name)
        with _mapped_errors():
            pages = proxy.query_items(
                query, parameters=parameters, partition_key=partition_key, max_item_count=limit
            ).by_page(continuation)
            items = [_document(item) async for item in await anext(pages, _no_items())]
            token = pages.continuation_token  # type: ignore[attr-defined]  # set by by_page
            return Page(items=items, continuation=token or None)

    async def read_many_async(
        self, container: str, keys: Sequence[tuple[str, str]]
    ) -> list[Document]:
        """Concurrent point reads (1 RU each): each key may lie in another partition."""

        async def read(partition_key: str, id: str) -> Document | None:
            try:
                return await self.read_async(container, partition_key, id)
            except NotFound:
                return None

        found = await asyncio.gather(*(read(pk, id) for pk, id in keys))
        return [document for document in found if document is not None]

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
        """`query_async`, each item encoded with `fields` only (the SDK hands over parsed
        JSON, so the texts are made here)."""
        page = await self.query_async(
            container, partition_key, where, order_by, limit, continuation
        )
        return JsonPage(
            items=[_ENCODE_JSON({name: item.get(name) for name in fields}) for item in page.items],
            continuation=page.continuation,
        )

    async def read_many_json_async(
        self, container: str, keys: Sequence[tuple[str, str]], fields: Sequence[str]
    ) -> list[str]:
        """`read_many_async`, each item encoded with `fields` only (as `query_json_async`)."""
        documents = await self.read_many_async(container, keys)
        return [_ENCODE_JSON({name: item.get(name) for name in fields}) for item in documents]

    async def close_async(self) -> None:
        """Close the running loop's async client (the sync client lives with the process)."""
        await self._async.close()

    # ------------------------------------------------------------------- change feed

    def read_changes(self, container: str, after_lsn: int, max_items: int = 100) -> list[Change]:
        """Replays the container's feed from the beginning and keeps what follows `after_lsn`.

        For the history-rebuild command only: each call reads the whole feed. `_lsn` is ordered
        per physical partition, which is the whole container below 50 GB / 10,000 RU/s.
        """
        with _mapped_errors():
            feed = self._container(container).query_items_change_feed(start_time="Beginning")
            changes = [change for change in map(_change, feed) if change.lsn > after_lsn]
        changes.sort(key=lambda change: change.lsn)
        return changes[:max_items]

    def get_checkpoint(self, container: str, lease_prefix: str) -> int:
        checkpoint_id = _checkpoint_id(container, lease_prefix)
        try:
            return int(self.read(LEASES.name, checkpoint_id, checkpoint_id)["lsn"])
        except NotFound:
            return 0

    def set_checkpoint(self, container: str, lease_prefix: str, lsn: int) -> None:
        """Move the checkpoint forward to `lsn`, never back (a slower writer may come later)."""
        checkpoint_id = _checkpoint_id(container, lease_prefix)
        document = {"id": checkpoint_id, "container": container, "lsn": lsn}

        def attempt() -> None:
            try:
                current = self.read(LEASES.name, checkpoint_id, checkpoint_id)
            except NotFound:
                self.create(LEASES.name, document)
                return
            if int(current["lsn"]) < lsn:
                self.replace(LEASES.name, document, if_match=current["_etag"])

        retry_on_race(
            attempt,
            f"checkpoint {checkpoint_id}",
            retry_on=(Conflict, PreconditionFailed, NotFound),
        )


def _batch_operation(operation: BatchOperation) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    match operation:
        case Create(document=document):
            return "create", (document,), {}
        case Upsert(document=document, if_match=None):
            return "upsert", (document,), {}
        case Upsert(document=document, if_match=etag) | Replace(document=document, if_match=etag):
            return "replace", (document["id"], document), _batch_if_match(etag)
        case Patch(id=id, operations=patches, condition=condition, if_match=etag):
            options = _batch_if_match(etag)
            predicate = cosmos_sql.filter_predicate(condition)
            if predicate is not None:
                options["filter_predicate"] = predicate
            return "patch", (id, cosmos_sql.patch_operations(patches)), options
        case Delete(id=id, if_match=etag):
            return "delete", (id,), _batch_if_match(etag)
        case Read(id=id):
            return "read", (id,), {}
    raise TypeError(f"unknown batch operation {operation!r}")


@contextmanager
def _mapped_batch_errors(operations: Sequence[BatchOperation]) -> Iterator[None]:
    """A failed operation as BatchFailed at its index; any other failure as the port's error."""
    try:
        yield
    except CosmosBatchOperationError as error:
        index = error.error_index or 0
        status = error.status_code
        failed = operations[index]
        if status == 404 and isinstance(failed, Upsert) and failed.if_match is not None:
            status = 412
        cause = store_error(status, _first_line(error.message))
        if not isinstance(cause, StoreError):
            raise cause from error
        raise BatchFailed(index, cause) from error
    except CosmosHttpResponseError as error:
        raise store_error(error.status_code, _first_line(error.message)) from error


def _batch_results(operations: Sequence[BatchOperation], results: Any) -> list[Document | None]:
    return [
        None if isinstance(operation, Delete) else _document(result["resourceBody"])
        for operation, result in zip(operations, results, strict=True)
    ]


async def _no_items() -> Any:
    """An empty page, for a query whose pager yields none."""
    return
    yield


class _AsyncClients:
    """One async client per event loop, opened by the loop's first awaited operation."""

    def __init__(
        self, endpoint: str, database: str, credential: AsyncCredential, verify_tls: bool
    ) -> None:
        self._endpoint = endpoint
        self._database = database
        self._credential = credential
        self._verify_tls = verify_tls
        self._per_loop: dict[asyncio.AbstractEventLoop, cosmos_aio.CosmosClient] = {}
        self._proxies: dict[tuple[asyncio.AbstractEventLoop, str], cosmos_aio.ContainerProxy] = {}

    async def container(self, name: str) -> cosmos_aio.ContainerProxy:
        loop = asyncio.get_running_loop()
        proxy = self._proxies.get((loop, name))
        if proxy is None:
            client = self._per_loop.get(loop)
            if client is None:
                self._forget_closed_loops()
                client = self._per_loop[loop] = cosmos_aio.CosmosClient(
                    self._endpoint,
                    credential=self._credential,
                    connection_verify=self._verify_tls,
                    **_CLIENT_OPTIONS,
                )
            database = client.get_database_client(self._database)
            proxy = self._proxies[(loop, name)] = database.get_container_client(name)
        return proxy

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._per_loop.pop(loop, None)
        self._proxies = {key: p for key, p in self._proxies.items() if key[0] is not loop}
        if client is not None:
            await client.close()

    def _forget_closed_loops(self) -> None:
        closed = [loop for loop in self._per_loop if loop.is_closed()]
        for loop in closed:
            del self._per_loop[loop]
        self._proxies = {key: p for key, p in self._proxies.items() if not key[0].is_closed()}


def _batch_if_match(etag: str | None) -> dict[str, Any]:
    return {} if etag is None else {"if_match_etag": etag}


def _checkpoint_id(container: str, lease_prefix: str) -> str:
    return f"{lease_prefix}checkpoint.{container}"


def _change(item: Any) -> Change:
    document = _document(item)
    lsn = document.pop("_lsn", None)
    if not isinstance(lsn, int):
        raise StoreError("the change feed answered an item without its _lsn position")
    return Change(lsn=lsn, document=document)
