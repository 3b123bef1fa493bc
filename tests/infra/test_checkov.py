"""checkov finds nothing in infra/ that is not skipped in place with a reason."""

from __future__ import annotations

import json
import subprocess
from functools import cache
from typing import Any

from tests.infra.bicep_tree import INFRA, REPO
from tests.infra.tools import infra_tool


@cache
def _scan() -> dict[str, Any]:
    completed = subprocess.run(
        [
            str(infra_tool("checkov")),
            "--directory",
            str(INFRA),
            "--framework",
            "bicep",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    report = json.loads(completed.stdout)
    return report[0] if isinstance(report, list) else report


def test_checkov_parses_every_template() -> None:
    summary = _scan()["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] > 0


def test_checkov_reports_no_failed_check() -> None:
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in _scan()["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)


def test_every_skipped_check_gives_its_reason() -> None:
    skipped = _scan()["results"]["skipped_checks"]
    unexplained = [
        c["check_id"]
        for c in skipped
        if c["check_result"].get("suppress_comment", "No comment provided") == "No comment provided"
    ]
    assert not unexplained
