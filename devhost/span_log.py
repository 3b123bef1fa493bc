"""devhost records the app's spans in its data dir, where `python -m devhost trace` reads them.

Each of devhost's processes that runs functions (`http`, `bus-triggers`, `feed-triggers`) sets
the OpenTelemetry SDK up with a batch span processor and an exporter that appends the spans as
JSON lines (OTLP's fields, flattened) to `<data dir>/traces/<process>.jsonl`: one file per
process, so that writers never interleave; a batch is one `write` on a file opened for
appending, and nothing is fsynced (a span lost to a crash costs a line of the picture, never
data). Set `OUTERPARK_RECORD_SPANS=0` to record nothing (the API then stays a no-op).

The files are rotated by size: a batch that would take a file past
`OUTERPARK_TRACE_FILE_MAX_MB` (64) goes to a new one, and the old one becomes
`<process>.jsonl.1` (`.1` → `.2`, ...); `OUTERPARK_TRACE_FILES_KEPT` (3) rotated files are
kept, the oldest dropped. A batch is never split, so every line stays whole in one file.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

TRACES_DIR = "traces"
PROCESS_ATTRIBUTE = "outerpark.process"
RECORD_SPANS = "OUTERPARK_RECORD_SPANS"
# Spans reach the file within half a second: `devhost trace` shows a saga as it runs.
_EXPORT_DELAY_MS = 500
# One encoder for every line: `json.dumps` with separators builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def traces_dir(data_dir: Path) -> Path:
    return data_dir / TRACES_DIR


def span_files(data_dir: Path) -> list[Path]:
    """Every span file in the data dir, the rotated ones included."""
    directory = traces_dir(data_dir)
    return sorted([*directory.glob("*.jsonl"), *directory.glob("*.jsonl.[0-9]*")])


def rotated(path: Path, generation: int) -> Path:
    return path.with_name(f"{path.name}.{generation}")


class SpanFileSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    max_megabytes: float = Field(
        64,
        gt=0,
        alias="OUTERPARK_TRACE_FILE_MAX_MB",
        description="A span file is rotated before a batch would take it past this size.",
    )
    kept: int = Field(
        3, ge=0, alias="OUTERPARK_TRACE_FILES_KEPT", description="Rotated span files kept."
    )


class JsonLinesSpanExporter(SpanExporter):
    """Appends each exported batch of spans to one file, as JSON lines, in one write; rotates
    the file by size (see the module)."""

    def __init__(
        self, path: Path, process: str, max_bytes: int = 64 * 1024 * 1024, kept: int = 3
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._max_bytes = max_bytes
        self._kept = kept
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size
        self._process = process

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        encode = _ENCODER.encode
        lines = "".join(encode(span_line(span, self._process)) + "\n" for span in spans).encode()
        try:
            if self._size > 0 and self._size + len(lines) > self._max_bytes:
                self._rotate()
            os.write(self._fd, lines)
        except OSError:
            return SpanExportResult.FAILURE
        self._size += len(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        os.close(self._fd)

    def _open(self, flags: int = 0) -> int:
        return os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | flags, 0o644)

    def _rotate(self) -> None:
        """`.jsonl` → `.jsonl.1` → ... → `.jsonl.<kept>`, the oldest overwritten; a new file."""
        os.close(self._fd)
        for generation in range(self._kept, 0, -1):
            older = self._path if generation == 1 else rotated(self._path, generation - 1)
            with contextlib.suppress(FileNotFoundError):
                os.replace(older, rotated(self._path, generation))
        self._fd = self._open(os.O_TRUNC)  # with nothing kept, the file starts again
        self._size = 0


def span_line(span: ReadableSpan, process: str) -> dict[str, Any]:
    context = span.get_span_context()
    parent = span.parent
    return {
        "traceId": format(context.trace_id, "032x"),
        "spanId": format(context.span_id, "016x"),
        "parentSpanId": format(parent.span_id, "016x") if parent is not None else "",
        "name": span.name,
        "kind": span.kind.name,
        "startTimeUnixNano": span.start_time,
        "endTimeUnixNano": span.end_time,
        "status": {"code": span.status.status_code.name, "message": span.status.description},
        "attributes": dict(span.attributes or {}),
        "process": process,
    }


def record_spans(data_dir: Path, process: str) -> TracerProvider | None:
    """Make this process record its spans in the data dir (unless OUTERPARK_RECORD_SPANS=0)."""
    if os.environ.get(RECORD_SPANS, "1") == "0":
        return None
    provider = TracerProvider(
        resource=Resource.create({"service.name": "outerpark", PROCESS_ATTRIBUTE: process})
    )
    files = SpanFileSettings()
    exporter = JsonLinesSpanExporter(
        traces_dir(data_dir) / f"{process}.jsonl",
        process,
        max_bytes=int(files.max_megabytes * 1024 * 1024),
        kept=files.kept,
    )
    provider.add_span_processor(
        BatchSpanProcessor(exporter, schedule_delay_millis=_EXPORT_DELAY_MS)
    )
    trace.set_tracer_provider(provider)
    return provider
