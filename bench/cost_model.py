"""Operations per saga → request units and money, with a price sheet (bench/prices/*.json).

The model, per completed saga (`counts` are bench.cloud_cost's tallies divided by the sagas):
- Cosmos DB request units: point reads * KB * `ru_point_read_per_kb`; writes (inside batches or
  not) * KB * `ru_write_per_kb`; query pages * `ru_query_page` + KB returned *
  `ru_query_per_kb_returned`; and per change-feed execution one feed read and one lease
  checkpoint (what the Functions Cosmos DB trigger does for every batch it hands over). Priced
  serverless, and provisioned at full use of the provisioned RU/s (a lower bound).
- Service Bus operations: each message sent, scheduled, received and completed is one
  operation (a conservative count: a batch send may bill as fewer); marginal price beyond the
  operations the Standard base charge includes.
- Function executions, and GB-seconds as the measured execution time * the instance memory (an
  upper bound: concurrent executions share an instance's memory). Free grants are left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRICES_DIR = Path(__file__).parent / "prices"
DEFAULT_SHEET = PRICES_DIR / "azure-eastus-2026-12.json"
CHANGE_FEED_FUNCTIONS = ("relay_", "history_from_")


def load_sheet(path: Path = DEFAULT_SHEET) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class SagaCost:
    request_units: float
    bus_operations: float
    executions: float
    gb_seconds: float
    usd_cosmos_serverless: float
    usd_cosmos_provisioned: float
    usd_service_bus: float
    usd_functions: float

    @property
    def usd_serverless(self) -> float:
        return self.usd_cosmos_serverless + self.usd_service_bus + self.usd_functions

    @property
    def usd_provisioned(self) -> float:
        return self.usd_cosmos_provisioned + self.usd_service_bus + self.usd_functions


def change_feed_executions(counts: dict[str, float]) -> float:
    return sum(
        value
        for key, value in counts.items()
        if key.startswith("function.")
        and not key.endswith(".seconds")
        and key.removeprefix("function.").startswith(CHANGE_FEED_FUNCTIONS)
    )


def executions(counts: dict[str, float]) -> float:
    return sum(
        v for k, v in counts.items() if k.startswith("function.") and not k.endswith(".seconds")
    )


def execution_seconds(counts: dict[str, float]) -> float:
    return sum(v for k, v in counts.items() if k.startswith("function.") and k.endswith(".seconds"))


def request_units(counts: dict[str, float], cosmos: dict[str, float]) -> float:
    feed = change_feed_executions(counts)
    return (
        counts.get("cosmos.read.kb", 0) * cosmos["ru_point_read_per_kb"]
        + counts.get("cosmos.write.kb", 0) * cosmos["ru_write_per_kb"]
        + counts.get("cosmos.query", 0) * cosmos["ru_query_page"]
        + counts.get("cosmos.query.kb", 0) * cosmos["ru_query_per_kb_returned"]
        + feed * (cosmos["ru_change_feed_read"] + cosmos["ru_lease_checkpoint"])
    )


def bus_operations(counts: dict[str, float]) -> float:
    return sum(
        counts.get(key, 0)
        for key in ("bus.sent", "bus.scheduled", "bus.received", "bus.completed", "bus.abandoned")
    )


def saga_cost(counts: dict[str, float], sheet: dict[str, Any]) -> SagaCost:
    cosmos, bus, functions = sheet["cosmos"], sheet["service_bus"], sheet["functions"]
    units = request_units(counts, cosmos)
    operations = bus_operations(counts)
    runs = executions(counts)
    gb_seconds = execution_seconds(counts) * functions["instance_memory_gb"]
    usd_per_ru_provisioned = cosmos["provisioned_usd_per_100_rus_hour"] / (100 * 3600)
    return SagaCost(
        request_units=units,
        bus_operations=operations,
        executions=runs,
        gb_seconds=gb_seconds,
        usd_cosmos_serverless=units * cosmos["serverless_usd_per_million_ru"] / 1e6,
        usd_cosmos_provisioned=units * usd_per_ru_provisioned,
        usd_service_bus=operations * bus["usd_per_million_operations"] / 1e6,
        usd_functions=runs * functions["usd_per_million_executions"] / 1e6
        + gb_seconds * functions["usd_per_gb_second"],
    )
