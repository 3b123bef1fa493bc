"""The store and bus the hosted functions use. devhost drives the triggers from these very
instances (the app's own composition root), so in-process writes wake the trigger loops at once."""

from __future__ import annotations

from shared.bootstrap import Services, get_services


def host_services() -> Services:
    return get_services()


def close_services(services: Services) -> None:
    """Close the embedded store and bus (if they were ever opened)."""
    for name in ("bus", "store"):
        backend = services.__dict__.get(name)
        close = getattr(backend, "close", None)
        if close is not None:
            close()
