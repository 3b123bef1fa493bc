"""Ports: what the use cases need from the outside world, and nothing more.

The document store is shaped on Cosmos DB for NoSQL and the message bus on Azure Service Bus,
so that the embedded SQLite adapters and the Azure adapters are interchangeable. Every adapter
is checked by the shared contract suites in `tests/contract/`.

Documents are plain JSON dicts. A stored document carries the system properties Cosmos adds:
`_etag` (opaque string, changes on every write) and `_ts` (epoch seconds of the last write).
A document with an integer `ttl` expires that many seconds after its last write (`-1` = never);
an expired document is invisible to every read and query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

Document = dict[str, Any]
JsonScalar = str | int | float | bool | None


# --------------------------------------------------------------------------- store errors


class StoreError(Exception):
    """Base class of every document-store failure the use cases may handle."""


class NotFound(StoreError):
    """404: no such item (or it expired)."""


class Conflict(StoreError):
    """409: an item with that id already exists in that partition."""


class PreconditionFailed(StoreError):
    """412: the `If-Match` ETag or the patch filter predicate did not hold."""


class TooManyRequests(StoreError):
    """429 that outlived the adapter's own retries."""


class BatchFailed(StoreError):
    """A transactional batch was rolled back because operation `index` failed with `cause`."""

    def __init__(self, index: int, cause: StoreError) -> None:
        super().__init__(f"batch operation {index} failed: {cause!r}")
        self.index = index
        self.cause = cause


# --------------------------------------------------------------------------- store operations


@dataclass(frozen=True)
class Condition:
    """One comparison of a document field (dotted `path`, e.g. "availableSeats") with a value.

    Used as a patch filter predicate (`FROM c WHERE c.path op value` in Cosmos) and as a
    query filter. A missing field never satisfies a condition.
    """

    path: str
    op: Literal["=", "!=", "<", "<=", ">", ">="]
    value: JsonScalar


@dataclass(frozen=True)
class Set:
    """Patch: set `path` to `value` (creating the field when absent)."""

    path: str
    value: Any


@dataclass(frozen=True)
class Incr:
    """Patch: add `value` to the number at `path` (Cosmos `incr`)."""

    path: str
    value: int | float


@dataclass(frozen=True)
class Remove:
    """Patch: remove the field at `path` (it must exist, as in Cosmos)."""

    path: str


PatchOperation = Set | Incr | Remove


@dataclass(frozen=True)
class Create:
    document: Document


@dataclass(frozen=True)
class Upsert:
    document: Document
    if_match: str | None = None


@dataclass(frozen=True)
class Replace:
    document: Document
    if_match: str | None = None


@dataclass(frozen=True)
class Patch:
    id: str
    operations: Sequence[PatchOperation]
    condition: Sequence[Condition] = ()
    if_match: str | None = None


@dataclass(frozen=True)
class Delete:
    id: str
    if_match: str | None = None


@dataclass(frozen=True)
class Read:
    id: str


BatchOperation = Create | Upsert | Replace | Patch | Delete | Read
MAX_BATCH_OPERATIONS = 100  # Cosmos DB's limit for one transactional batch


def written(results: Sequence[Document | None], index: int) -> Document:
    """The document the batch operation at `index` wrote (any operation but a Delete)."""
    document = results[index]
    if document is None:
        raise TypeError(f"batch operation {index} is a Delete: it wrote no document")
    return document


@dataclass(frozen=True)
class OrderBy:
    path: str
    descending: bool = False


@dataclass(frozen=True)
class Page:
    """One page of a query. `continuation` is opaque; None on the last page."""

    items: list[Document]
    continuation: str | None = None


@dataclass(frozen=True)
class JsonPage:
    """One page of a query, each item as the JSON text of an object (see `query_json_async`)."""

    items: list[str]
    continuation: str | None = None


@runtime_checkable
class DocumentStore(Protocol):
    """A Cosmos-DB-shaped document store. Containers are named in `shared.topology`.

    Every method addresses exactly one logical partition: there is no cross-partition query.
    Writes take the partition key from the document, at the container's partition key path.
    """

    def read(self, container: str, partition_key: str, id: str) -> Document:
        """Point read. Raises NotFound."""

    def create(self, container: str, document: Document) -> Document:
        """Insert; raises Conflict when the id exists in that partition. Returns the stored doc."""

    def upsert(self, container: str, document: Document, if_match: str | None = None) -> Document:
        """Insert or replace. With `if_match`, the item must exist with that ETag (else 412)."""

    def replace(self, container: str, document: Document, if_match: str | None = None) -> Document:
        """Replace an existing item (NotFound if absent; PreconditionFailed on ETag mismatch)."""

    def patch(
        self,
        container: str,
        partition_key: str,
        id: str,
        operations: Sequence[PatchOperation],
        condition: Sequence[Condition] = (),
        if_match: str | None = None,
    ) -> Document:
        """Partial update, applied only if every condition holds (else PreconditionFailed)."""

    def delete(
        self, container: str, partition_key: str, id: str, if_match: str | None = None
    ) -> None:
        """Delete. Raises NotFound / PreconditionFailed."""

    def batch(
        self, container: str, partition_key: str, operations: Sequence[BatchOperation]
    ) -> list[Document | None]:
        """Run up to MAX_BATCH_OPERATIONS (100) operations in one partition atomically: all
        commit or none does.

        Returns, per operation, the resulting document (None for Delete). On the first failing
        operation everything is rolled back and BatchFailed(index, cause) is raised.
        """

    def query(
        self,
        container: str,
        partition_key: str,
        where: Sequence[Condition] = (),
        order_by: Sequence[OrderBy] = (),
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page:
        """Items of one partition matching every condition, in order, one page at a time."""


@runtime_checkable
class AsyncDocumentStore(Protocol):
    """The DocumentStore operations an `async def` function awaits, with the same semantics.

    A function on the worker's event loop must not block it: the hot path (placing a
    reservation) is async, and awaits these instead of calling the blocking ones.
    """

    async def read_async(self, container: str, partition_key: str, id: str) -> Document: ...

    async def create_async(self, container: str, document: Document) -> Document: ...

    async def replace_async(
        self, container: str, document: Document, if_match: str | None = None
    ) -> Document: ...

    async def delete_async(
        self, container: str, partition_key: str, id: str, if_match: str | None = None
    ) -> None: ...

    async def batch_async(
        self, container: str, partition_key: str, operations: Sequence[BatchOperation]
    ) -> list[Document | None]: ...

    async def query_async(
        self,
        container: str,
        partition_key: str,
        where: Sequence[Condition] = (),
        order_by: Sequence[OrderBy] = (),
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page:
        """`DocumentStore.query`, awaited: the reads of the API answer from the event loop."""

    async def read_many_async(
        self, container: str, keys: Sequence[tuple[str, str]]
    ) -> list[Document]:
        """Point reads of many items, each named by (partition key, id), at once: the items
        that exist, in the order of `keys` (a missing one is left out, never an error)."""

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
        """`query_async`, each item given as the JSON text of an object holding only the
        top-level `fields`, in that order (a field the item lacks is null): an answer made of
        stored JSON is joined from these texts, without decoding or encoding them."""

    async def read_many_json_async(
        self, container: str, keys: Sequence[tuple[str, str]], fields: Sequence[str]
    ) -> list[str]:
        """`read_many_async`, each item given as `query_json_async` gives it: the JSON text of
        an object of the top-level `fields`, in that order (a field the item lacks is null)."""


@dataclass(frozen=True)
class Change:
    """One entry of a container's change feed: the latest version of an item and its position."""

    lsn: int
    document: Document


@runtime_checkable
class ChangeFeed(Protocol):
    """The change feed of a container, as the Functions Cosmos DB trigger consumes it.

    Positions (`lsn`) are monotonic per container. An item appears once, at the position of its
    latest write (intermediate versions may be skipped). Deletes and expiries never appear.
    Checkpoints are per consumer (`lease_prefix`), stored in the leases container.
    """

    def read_changes(self, container: str, after_lsn: int, max_items: int = 100) -> list[Change]:
        """Changes with lsn > after_lsn, oldest first."""

    def get_checkpoint(self, container: str, lease_prefix: str) -> int:
        """The last lsn that consumer finished (0 if it never ran)."""

    def set_checkpoint(self, container: str, lease_prefix: str, lsn: int) -> None:
        """Record that consumer finished everything up to lsn (never moves backwards)."""


# --------------------------------------------------------------------------- message bus


@dataclass(frozen=True)
class OutboundMessage:
    """A message to publish, with the Service Bus fields the handlers rely on.

    `message_id` drives duplicate detection: publishing the same id twice within the topic's
    window delivers it once. `scheduled_enqueue_time` (UTC) defers delivery.
    """

    body: bytes
    message_id: str
    subject: str
    correlation_id: str | None = None
    content_type: str = "application/json"
    application_properties: dict[str, JsonScalar] = field(default_factory=dict)
    scheduled_enqueue_time: datetime | None = None


class MessagePublisher(Protocol):
    """Publishes to Service Bus topics (named in `shared.topology`)."""

    def publish(self, topic: str, messages: Sequence[OutboundMessage]) -> None:
        """Send messages (scheduled ones are enqueued at their time). Raises on failure."""


@dataclass(frozen=True)
class ReceivedMessage:
    """A message delivered under a peek-lock, as the Service Bus trigger sees it."""

    body: bytes
    message_id: str
    subject: str
    correlation_id: str | None
    content_type: str
    application_properties: dict[str, JsonScalar]
    delivery_count: int
    sequence_number: int
    enqueued_time: datetime
    lock_token: str
    locked_until: datetime
    topic: str
    subscription: str
    dead_letter_reason: str | None = None
    dead_letter_error_description: str | None = None


class MessageReceiver(Protocol):
    """Peek-lock consumption of a subscription (the embedded bus; in Azure, the trigger does it).

    A received message stays invisible to other receivers until its lock expires; then it is
    delivered again with delivery_count + 1. When delivery_count would exceed the subscription's
    max delivery count the message is dead-lettered instead (reason MaxDeliveryCountExceeded).
    """

    def receive(
        self, topic: str, subscription: str, max_messages: int = 1
    ) -> list[ReceivedMessage]:
        """Lock and return up to max_messages deliverable messages, oldest first (no waiting)."""

    def complete(self, message: ReceivedMessage) -> None:
        """Settle: remove the message. Raises LockLost when the lock expired meanwhile."""

    def abandon(self, message: ReceivedMessage) -> None:
        """Release the lock now, for immediate redelivery."""

    def renew_lock(self, message: ReceivedMessage) -> datetime:
        """Extend the lock by the subscription's lock duration; returns the new locked_until."""

    def dead_letter(self, message: ReceivedMessage, reason: str, description: str = "") -> None:
        """Move the message to the subscription's dead-letter queue."""


class LockLost(Exception):
    """The peek-lock expired (or the message was settled) before the settlement call."""


# --------------------------------------------------------------------------- other ports


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""


# --------------------------------------------------------------------------- payment gateway


@dataclass(frozen=True)
class PaymentApproval:
    payment_key: str
    approved_at: datetime


GatewayPaymentStatus = Literal["DONE", "CANCELED", "PARTIAL_CANCELED"]


@dataclass(frozen=True)
class GatewayPayment:
    """A payment as the gateway holds it (docs/payment-gateway.md, "Payment")."""

    payment_key: str
    order_id: str
    status: GatewayPaymentStatus
    total_amount: int
    balance_amount: int


class PaymentDeclined(Exception):
    """The card was declined (a 4xx whose `code` is a card decline). Final: nothing was
    charged, and retrying cannot change the answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class OutcomeUnknown(Exception):
    """The call may or may not have done its work: nothing may be concluded about a charge
    until a later call with the same Idempotency-Key, or a lookup of the order, says so."""


class GatewayUnavailable(OutcomeUnknown):
    """The gateway failed: a 5xx, a timeout, a cut or refused connection, an answer outside
    docs/payment-gateway.md, or the circuit breaker is open. Counts as a failure for the breaker."""


class GatewayNotReached(GatewayUnavailable):
    """The call certainly never reached the gateway (refused connection, connect timeout, an
    open breaker): nothing can have been charged by it."""


class MerchantRejected(GatewayUnavailable):
    """401 `UNAUTHORIZED_KEY` / 403 `FORBIDDEN_REQUEST`: the merchant's own key or setup is
    wrong. Never a decline: the gateway is unusable for this app until operators fix it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class StillProcessing(OutcomeUnknown):
    """409 `IDEMPOTENT_REQUEST_PROCESSING`: a call with this key is still being processed.
    The gateway works (not a breaker failure); ask again later, or look the order up."""


class AlreadyProcessed(OutcomeUnknown):
    """400 `ALREADY_PROCESSED_PAYMENT`: this order was charged before (an earlier answer was
    lost): look the order up for its payment key and state. Not a decline."""


class PaymentGateway(Protocol):
    """The card gateway (docs/payment-gateway.md)."""

    def confirm(self, order_id: str, amount: int, order_name: str) -> PaymentApproval:
        """Charge the order (Idempotency-Key = order_id). Raises PaymentDeclined (final) or an
        OutcomeUnknown (AlreadyProcessed, StillProcessing, GatewayUnavailable and its kinds)."""

    def lookup(self, order_id: str) -> GatewayPayment | None:
        """The order's payment, or None when it was not charged so far (404
        `NOT_FOUND_PAYMENT`; a confirm still running may yet charge it). Raises
        GatewayUnavailable (or MerchantRejected) when the gateway cannot say."""

    def cancel(
        self,
        payment_key: str,
        reason: str,
        idempotency_key: str,
        cancel_amount: int | None = None,
    ) -> None:
        """Cancel `cancel_amount` of the payment (None: its whole balance); returns when the
        gateway says it is cancelled, or that nothing is left to cancel. Anything else raises
        an OutcomeUnknown: try again later with the same key."""

    def admits(self) -> bool:
        """Whether a call made now would be let through. A circuit breaker in front of the
        gateway answers from its cached state, so asking costs no call and no write; a bare
        client always answers True."""


# --------------------------------------------------------------------------- notifications


class NoticeSender(Protocol):
    """Delivers a notification to a customer (log, e-mail, SMS…). At-least-once: providers
    receive `notice_id` as their idempotency key."""

    def send(self, notice_id: str, customer_id: str, kind: str, message: str) -> None:
        """Deliver, or raise to be retried."""
