"""One page of a partition query, for the API's lists."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from shared.domain.errors import InvalidContinuationToken
from shared.ports import AsyncDocumentStore, Condition, OrderBy, Page


async def query_page(
    store: AsyncDocumentStore,
    container: str,
    partition_key: str,
    where: Sequence[Condition],
    order_by: Sequence[OrderBy],
    limit: int,
    continuation: str | None,
) -> Page:
    """The page; a continuation token the store cannot read is the client's error (422)."""
    with tokens_checked(continuation):
        return await store.query_async(
            container, partition_key, where, order_by, limit, continuation
        )


@contextmanager
def tokens_checked(continuation: str | None) -> Iterator[None]:
    """A store's ValueError while reading from `continuation` as the client's error (422)."""
    try:
        yield
    except ValueError:
        if continuation is None:
            raise
        raise InvalidContinuationToken(
            "continuationToken is not one this list returned; start again without it"
        ) from None
