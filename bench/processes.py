"""devhost's processes and their CPU time, and the CPU time the hypervisor took from the VM,
read from /proc (Linux only).

`python -m devhost` is the HTTP host plus child processes (devhost.children): the store
service, the two trigger hosts and, unless a gateway URL is given, the gateway simulator. A child
started again by its supervisor thread is that thread's child, so every thread is looked at.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from devhost.commands.serve import TRIGGER_HOSTS

ROLES = {
    "devhost.store_service": "store",
    "devhost.gateway_simulator": "gateway",
}
# The trigger hosts, told apart by the kind of trigger each drives, named as devhost names them.
TRIGGER_HOST = "devhost.trigger_host"
TRIGGER_ROLES = {kind: name for name, kinds in TRIGGER_HOSTS.items() for kind in kinds}


def devhost_processes(host_pid: int) -> dict[str, int]:
    """{"http": host_pid, "store": pid, "bus-triggers": pid, ...} (those running)."""
    found = {"http": host_pid}
    for task in Path(f"/proc/{host_pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            command = Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")
            role = _role(command)
            if role is not None:
                found[role] = int(child)
    return found


def _role(command: list[str]) -> str | None:
    if TRIGGER_HOST in command:
        hosts = {TRIGGER_ROLES[part] for part in command if part in TRIGGER_ROLES}
        return hosts.pop() if len(hosts) == 1 else "triggers"
    return next((ROLES[part] for part in command if part in ROLES), None)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of `pid` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds (user, system) per devhost process between two `snapshot`s."""

    seconds: dict[str, tuple[float, float]]

    def per_request_us(self, requests: int) -> dict[str, float]:
        return {role: (u + s) / max(requests, 1) * 1e6 for role, (u, s) in self.seconds.items()}

    def line(self, requests: int) -> str:
        parts = [f"{role} {us:.0f}" for role, us in self.per_request_us(requests).items()]
        return "CPU µs per request: " + ", ".join(parts)


def snapshot(host_pid: int) -> dict[str, tuple[float, float]]:
    return {role: cpu_seconds(pid) for role, pid in devhost_processes(host_pid).items()}


def used_between(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> CpuUse:
    return CpuUse(
        {
            role: (u - before[role][0], s - before[role][1])
            for role, (u, s) in after.items()
            if role in before
        }
    )


def steal_seconds() -> float:
    """CPU seconds this VM's vCPUs were ready to run but the hypervisor ran something else (the
    `steal` column of /proc/stat), all CPUs together, so far."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK")
