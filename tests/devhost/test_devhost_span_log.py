"""devhost's span files: rotated by size, a few kept, and `devhost trace` reads them all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from pydantic import ValidationError

from devhost.span_log import JsonLinesSpanExporter, SpanFileSettings, rotated, traces_dir
from devhost.trace_view import load_spans, traces_of
from shared.observability import RESERVATION_ATTRIBUTE

KEPT = 2


def record(data_dir: Path, count: int, max_bytes: int, kept: int = KEPT) -> Path:
    """Record `count` spans of reservation r-1, one export each, named span-0, span-1, ..."""
    path = traces_dir(data_dir) / "bus-triggers.jsonl"
    exporter = JsonLinesSpanExporter(path, "bus-triggers", max_bytes=max_bytes, kept=kept)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for i in range(count):
        with tracer.start_as_current_span(f"span-{i}", attributes={RESERVATION_ATTRIBUTE: "r-1"}):
            pass
    provider.shutdown()
    return path


def names_in(path: Path) -> list[str]:
    return [json.loads(line)["name"] for line in path.read_text().splitlines()]


def one_line_bytes(tmp_path: Path) -> int:
    path = record(tmp_path / "probe", 1, max_bytes=1 << 20)
    return path.stat().st_size


def test_a_span_file_is_rotated_before_it_outgrows_its_size_and_only_a_few_are_kept(tmp_path):
    line = one_line_bytes(tmp_path)
    path = record(tmp_path / "data", 20, max_bytes=3 * line + line // 2)

    assert names_in(path) == ["span-18", "span-19"]
    assert names_in(rotated(path, 1)) == ["span-15", "span-16", "span-17"]
    assert names_in(rotated(path, 2)) == ["span-12", "span-13", "span-14"]
    assert not rotated(path, 3).exists()
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "bus-triggers.jsonl",
        "bus-triggers.jsonl.1",
        "bus-triggers.jsonl.2",
    ]


def test_a_restarted_process_counts_what_its_file_already_holds(tmp_path):
    line = one_line_bytes(tmp_path)
    data_dir = tmp_path / "data"
    record(data_dir, 2, max_bytes=3 * line + line // 2)
    path = record(data_dir, 2, max_bytes=3 * line + line // 2)

    assert len(names_in(path)) == 1
    assert len(names_in(rotated(path, 1))) == 3


def test_with_no_rotated_file_kept_the_file_starts_again(tmp_path):
    line = one_line_bytes(tmp_path)
    path = record(tmp_path / "data", 5, max_bytes=2 * line, kept=0)

    assert names_in(path) == ["span-4"]
    assert list(path.parent.iterdir()) == [path]


def test_devhost_trace_reads_the_rotated_files_too(tmp_path):
    line = one_line_bytes(tmp_path)
    data_dir = tmp_path / "data"
    record(data_dir, 10, max_bytes=3 * line)  # [3 4 5] [6 7 8] [9]: 0 to 2 dropped

    found = [span.name for trace in traces_of(load_spans(data_dir), "r-1") for span in trace]

    assert found == [f"span-{i}" for i in range(3, 10)]


def test_the_rotation_settings_default_to_64_mb_and_3_files_and_refuse_nonsense(monkeypatch):
    assert SpanFileSettings().max_megabytes == 64
    assert SpanFileSettings().kept == 3
    monkeypatch.setenv("OUTERPARK_TRACE_FILE_MAX_MB", "0.5")
    monkeypatch.setenv("OUTERPARK_TRACE_FILES_KEPT", "5")
    assert SpanFileSettings().max_megabytes == 0.5
    assert SpanFileSettings().kept == 5
    monkeypatch.setenv("OUTERPARK_TRACE_FILE_MAX_MB", "0")
    with pytest.raises(ValidationError, match="OUTERPARK_TRACE_FILE_MAX_MB"):
        SpanFileSettings()
