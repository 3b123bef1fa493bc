"""What `python -m devhost trace ID` prints: every recorded span of the traces that touched a
reservation id or a correlation id, as an indented tree per trace (see devhost.span_log)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devhost.span_log import span_files
from shared.observability import CORRELATION_ATTRIBUTE, OUTCOME_ATTRIBUTE, RESERVATION_ATTRIBUTE


@dataclass(frozen=True)
class SpanRecord:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    process: str
    start_ns: int
    end_ns: int
    status: str
    status_message: str | None
    attributes: dict[str, Any]

    @classmethod
    def of(cls, line: dict[str, Any]) -> SpanRecord:
        status = line.get("status") or {}
        return cls(
            trace_id=line["traceId"],
            span_id=line["spanId"],
            parent_span_id=line.get("parentSpanId") or "",
            name=line["name"],
            process=line.get("process", "?"),
            start_ns=int(line["startTimeUnixNano"]),
            end_ns=int(line["endTimeUnixNano"]),
            status=status.get("code", "UNSET"),
            status_message=status.get("message"),
            attributes=line.get("attributes") or {},
        )

    def mentions(self, id_: str) -> bool:
        attributes = self.attributes
        return id_ in (attributes.get(RESERVATION_ATTRIBUTE), attributes.get(CORRELATION_ATTRIBUTE))

    @property
    def outcome(self) -> str:
        recorded = self.attributes.get(OUTCOME_ATTRIBUTE)
        if recorded is not None:
            return str(recorded)
        if self.status == "ERROR":
            return f"error: {self.status_message}" if self.status_message else "error"
        return "ok"


def load_spans(data_dir: Path) -> list[SpanRecord]:
    """Every span recorded in the data dir, rotated files included; a line cut short by a
    crash is skipped."""
    spans = []
    for path in span_files(data_dir):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    spans.append(SpanRecord.of(json.loads(line)))
                except (ValueError, KeyError, TypeError):
                    continue
    return spans


def traces_of(spans: Iterable[SpanRecord], id_: str) -> list[list[SpanRecord]]:
    """The traces (each a list of its spans) in which some span names `id_`, oldest first."""
    by_trace: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    wanted = [
        trace_spans
        for trace_spans in by_trace.values()
        if any(span.mentions(id_) for span in trace_spans)
    ]
    return sorted(wanted, key=lambda trace_spans: min(span.start_ns for span in trace_spans))


def render(trace_spans: list[SpanRecord]) -> Iterator[str]:
    """One line per span, children indented under their parent, siblings by start time. A span
    whose parent was not recorded here (a caller's, Azure's) is a root."""
    known = {span.span_id for span in trace_spans}
    children: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in trace_spans:
        children[span.parent_span_id if span.parent_span_id in known else ""].append(span)
    first = trace_spans[0]
    ids = ", ".join(_ids(trace_spans))
    yield f"trace {first.trace_id}" + (f" ({ids})" if ids else "")
    yield from _lines(children, "", 1)


_ID_ATTRIBUTES = (("reservation", RESERVATION_ATTRIBUTE), ("correlation", CORRELATION_ATTRIBUTE))


def _ids(trace_spans: list[SpanRecord]) -> list[str]:
    found = []
    for label, attribute in _ID_ATTRIBUTES:
        values = {str(s.attributes[attribute]) for s in trace_spans if attribute in s.attributes}
        found.extend(f"{label} {value}" for value in sorted(values))
    return found


def _lines(children: dict[str, list[SpanRecord]], parent: str, depth: int) -> Iterator[str]:
    for span in sorted(children.get(parent, []), key=lambda s: (s.start_ns, s.name)):
        yield "  " * depth + _describe(span)
        yield from _lines(children, span.span_id, depth + 1)


def _describe(span: SpanRecord) -> str:
    start = datetime.fromtimestamp(span.start_ns / 1e9, UTC).isoformat(timespec="milliseconds")
    duration_ms = (span.end_ns - span.start_ns) / 1e6
    return f"{span.name}  [{span.process}]  {start}  {duration_ms:.1f} ms  {span.outcome}"
