"""The embedded backends as the app's bootstrap builds them.

`shared.bootstrap` imports the module that `OUTERPARK_LOCAL_BACKENDS` names (this one, set by
devhost for every process it runs and by the tests) when no Cosmos DB or Service Bus settings
are given. The settings below are devhost's own: Azure never sets them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from devhost.embedded.bus_check import BacklogCounter, EmbeddedBusCheck
from shared.handlers.readiness import BusCheck
from shared.ports import DocumentStore, MessagePublisher

LOCAL_BACKENDS = __name__
"""The value of `OUTERPARK_LOCAL_BACKENDS` that selects these backends."""


class EmbeddedSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    data_dir: Path = Field(Path(".outerpark"), alias="OUTERPARK_DATA_DIR")
    store_socket: Path | None = Field(
        None,
        alias="OUTERPARK_STORE_SOCKET",
        description="The local store service's socket: set by devhost for the hosts it runs.",
    )
    bus_rings: Path | None = Field(
        None,
        alias="OUTERPARK_BUS_RINGS",
        description="The socket on which devhost's Service Bus trigger host hears of messages "
        "that its other processes publish to the embedded bus: set by devhost.",
    )
    store_priority: Literal["high", "low"] = Field(
        "high",
        alias="OUTERPARK_STORE_PRIORITY",
        description="Priority of this process's writes at the store service: devhost's trigger "
        "host writes at low priority, so that requests' writes come first.",
    )


def document_store() -> DocumentStore:
    """The embedded store in `OUTERPARK_DATA_DIR`, written through devhost's store service when
    `OUTERPARK_STORE_SOCKET` names one."""
    settings = EmbeddedSettings()
    if settings.store_socket is not None:
        from devhost.embedded.sqlite_store_client import SqliteStoreClient

        return SqliteStoreClient(
            settings.data_dir, settings.store_socket, priority=settings.store_priority
        )
    from devhost.embedded.sqlite_store import SqliteDocumentStore

    return SqliteDocumentStore(settings.data_dir)


def message_bus() -> MessagePublisher:
    """The embedded bus in `OUTERPARK_DATA_DIR`, ringing devhost's trigger host when
    `OUTERPARK_BUS_RINGS` names its socket."""
    from devhost.embedded.sqlite_bus import SqliteMessageBus

    settings = EmbeddedSettings()
    return SqliteMessageBus(settings.data_dir, rings=settings.bus_rings)


def bus_check(bus: MessagePublisher) -> BusCheck:
    """Readiness's check of `bus`, the embedded bus that `message_bus` built."""
    if not isinstance(bus, BacklogCounter):
        raise TypeError(f"{type(bus).__name__} cannot count a subscription's backlog")
    return EmbeddedBusCheck(bus)
