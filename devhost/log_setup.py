"""The host's logs: the project's JSON lines (shared.observability), for the host's own loggers,
uvicorn's and the functions' alike. Each of devhost's processes stamps its `role` on its lines
(`http`, `triggers`, `store`, `gateway`): they share one output."""

from __future__ import annotations

import logging

from shared.observability import configure_json_logging


class _DropColorMessage(logging.Filter):
    """uvicorn adds an ANSI-coloured copy of some messages as an extra field: not for JSON."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("color_message", None)
        return True


class _Role(logging.Filter):
    def __init__(self, role: str) -> None:
        super().__init__()
        self._role = role

    def filter(self, record: logging.LogRecord) -> bool:
        record.role = self._role
        return True


def configure_host_logging(role: str) -> None:
    configure_json_logging()
    for handler in logging.getLogger().handlers:
        handler.addFilter(_Role(role))
    logging.getLogger("uvicorn.error").addFilter(_DropColorMessage())
    # The JSON lines show neither the caller's file and line nor thread or process names: skip
    # collecting them for every line (the logging HOWTO's "Optimization").
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
