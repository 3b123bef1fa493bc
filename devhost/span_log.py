"""devhost records the app's spans in its data dir, where `python -m devhost trace` reads them.

Each of devhost's processes that runs functions (`http`, `bus-triggers`, `feed-triggers`) sets
the OpenTelemetry SDK up with a batch span processor and an exporter that appends the spans as
JSON lines (OTLP's fields, flattened) to `<data dir>/traces/<process>.jsonl`: one file per
process, so that writers never interleave; a batch is one `write` on a file opened for
appending, and nothing is fsynced (a span lost to a crash costs a line of the picture, never
data). Set `OUTERPARK_RECORD_SPANS=0` to record nothing (the API then stays a no-op).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

TRACES_DIR = "traces"
PROCESS_ATTRIBUTE = "outerpark.process"
RECORD_SPANS = "OUTERPARK_RECORD_SPANS"
# Spans reach the file within half a second: `devhost trace` shows a saga as it runs.
_EXPORT_DELAY_MS = 500


def traces_dir(data_dir: Path) -> Path:
    return data_dir / TRACES_DIR


class JsonLinesSpanExporter(SpanExporter):
    """Appends each exported batch of spans to one file, as JSON lines, in one write."""

    def __init__(self, path: Path, process: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._process = process

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(
            json.dumps(span_line(span, self._process), separators=(",", ":")) + "\n"
            for span in spans
        )
        try:
            os.write(self._fd, lines.encode())
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        os.close(self._fd)


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
    exporter = JsonLinesSpanExporter(traces_dir(data_dir) / f"{process}.jsonl", process)
    provider.add_span_processor(
        BatchSpanProcessor(exporter, schedule_delay_millis=_EXPORT_DELAY_MS)
    )
    trace.set_tracer_provider(provider)
    return provider
