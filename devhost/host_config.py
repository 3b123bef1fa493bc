"""The parts of `host.json` the local host honours, with the Functions runtime's defaults."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class HttpOptions(_Section):
    route_prefix: str = Field("api", alias="routePrefix")


class ServiceBusOptions(_Section):
    max_concurrent_calls: int = Field(16, alias="maxConcurrentCalls", ge=1)
    max_auto_lock_renewal_duration: timedelta = Field(
        timedelta(minutes=5), alias="maxAutoLockRenewalDuration"
    )


class Extensions(_Section):
    http: HttpOptions = HttpOptions()
    service_bus: ServiceBusOptions = Field(ServiceBusOptions(), alias="serviceBus")


class HostConfig(_Section):
    extensions: Extensions = Extensions()

    @property
    def route_prefix(self) -> str:
        return self.extensions.http.route_prefix.strip("/")

    @property
    def service_bus(self) -> ServiceBusOptions:
        return self.extensions.service_bus


def load_host_config(directory: Path) -> HostConfig:
    """`directory/host.json`, or the defaults when there is none."""
    path = directory / "host.json"
    if not path.is_file():
        return HostConfig()
    return HostConfig.model_validate(json.loads(path.read_text(encoding="utf-8")))
