"""The `@app.retry` policy of a function, as the Functions host applies it to Cosmos DB triggers.

`fixed_delay` waits `delay_interval` between attempts; `exponential_backoff` waits
`minimum_interval`, then doubles, up to `maximum_interval`. `max_retry_count` -1 retries forever.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator


class RetryPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    strategy: Literal["fixed_delay", "exponential_backoff"]
    max_retry_count: int
    delay_interval: timedelta = timedelta(0)
    minimum_interval: timedelta = timedelta(0)
    maximum_interval: timedelta = timedelta(0)

    @field_validator("strategy", mode="before")
    @classmethod
    def _snake_case(cls, value: Any) -> Any:
        spelled = {"fixeddelay": "fixed_delay", "exponentialbackoff": "exponential_backoff"}
        return spelled.get(str(value).replace("_", "").lower(), value)

    def allows(self, retries_done: int) -> bool:
        """May the function be retried after `retries_done` retries already?"""
        return self.max_retry_count < 0 or retries_done < self.max_retry_count

    def delay(self, retry_number: int) -> float:
        """Seconds to wait before retry number `retry_number` (1 for the first retry)."""
        if self.strategy == "fixed_delay":
            return self.delay_interval.total_seconds()
        grown = self.minimum_interval.total_seconds() * 2 ** min(retry_number - 1, 32)
        return min(grown, self.maximum_interval.total_seconds())


def retry_policy_of(settings: dict[str, Any] | None) -> RetryPolicy | None:
    return None if settings is None else RetryPolicy.model_validate(settings)
