"""One page of a partition query, for the API's lists, with sealed continuation tokens.

A client gets the store's continuation token sealed with a tag of the list it belongs to (the
container, the partition, the filter and the order: a customer's history token names that
customer). A token that was altered, or that another list issued, fails the tag and is refused
with 422 before any store sees it (openapi.yaml). The tag's key is not a secret: it stops
altered and foreign tokens, not a deliberate forgery; a forged token still meets each store's own
checks of what it decodes (the SQLite store's token decoder, Cosmos DB's 400), which are 422 too.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from shared.domain.errors import InvalidContinuationToken
from shared.ports import AsyncDocumentStore, Condition, JsonPage, OrderBy

_TAG_KEY = b"outerpark continuation token v1"
_TAG_BYTES = 16
_REFUSED = "continuationToken is not one this list returned; start again without it"
_ENCODE_JSON = json.JSONEncoder(separators=(",", ":")).encode


async def query_json_page(
    store: AsyncDocumentStore,
    container: str,
    partition_key: str,
    fields: Sequence[str],
    where: Sequence[Condition],
    order_by: Sequence[OrderBy],
    limit: int,
    continuation: str | None,
) -> JsonPage:
    """The page, each item as the JSON text of its `fields` (`query_json_async`); a
    continuation token this list did not issue is the client's error (422)."""
    scope = list_scope(container, partition_key, where, order_by)
    inner = None if continuation is None else unseal(continuation, scope)
    with tokens_checked(inner):
        page = await store.query_json_async(
            container, partition_key, fields, where, order_by, limit, inner
        )
    return JsonPage(items=page.items, continuation=sealed_or_none(page.continuation, scope))


def page_json(items: Sequence[str], continuation_token: str | None, head: str = "") -> str:
    """A list's answer joined from its items' JSON texts (nothing decoded or encoded again):
    `{<head>"items":[...],"continuationToken":...}`, `head` being the members before the items,
    each followed by a comma."""
    token = _ENCODE_JSON(continuation_token)
    return f'{{{head}"items":[{",".join(items)}],"continuationToken":{token}}}'


@contextmanager
def tokens_checked(inner: str | None) -> Iterator[None]:
    """A store's ValueError while reading from the (unsealed) `inner` token as a 422."""
    try:
        yield
    except ValueError:
        if inner is None:
            raise
        raise InvalidContinuationToken(_REFUSED) from None


def sealed_or_none(inner: str | None, scope: bytes) -> str | None:
    return None if inner is None else seal(inner, scope)


def seal(inner: str, scope: bytes) -> str:
    """`inner` (the store's token) as the client sees it: base64url of it, a dot, the tag."""
    raw = inner.encode()
    body = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return f"{body}.{_tag(scope, raw)}"


def unseal(token: str, scope: bytes) -> str:
    """The store's token inside `token`; InvalidContinuationToken unless this list sealed it."""
    body, dot, tag = token.partition(".")
    if not dot or not body.isascii() or not tag.isascii():
        raise InvalidContinuationToken(_REFUSED)
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        inner = raw.decode()
    except (binascii.Error, ValueError):
        raise InvalidContinuationToken(_REFUSED) from None
    if not hmac.compare_digest(tag, _tag(scope, raw)) or not inner.isprintable():
        raise InvalidContinuationToken(_REFUSED)
    return inner


def _tag(scope: bytes, raw: bytes) -> str:
    digest = hashlib.blake2b(scope + b"\0" + raw, key=_TAG_KEY, digest_size=_TAG_BYTES)
    return digest.hexdigest()


def list_scope(
    container: str, partition_key: str, where: Sequence[Condition], order_by: Sequence[OrderBy]
) -> bytes:
    """What a token is sealed to: the container, the partition, the filter and the order."""
    typed = tuple((condition, type(condition.value)) for condition in where)
    return _scope(container, partition_key, typed, tuple(order_by))


@functools.lru_cache(maxsize=4096)
def _scope(
    container: str,
    partition_key: str,
    typed: tuple[tuple[Condition, type], ...],
    order_by: tuple[OrderBy, ...],
) -> bytes:
    """Written once per list (a customer's history asks for its own on every page); keyed
    with each value's type too (True == 1, but their lists differ)."""
    where = tuple(condition for condition, _ in typed)
    return repr((container, partition_key, where, order_by)).encode()
