"""Validation tools that live outside the app's venv (.venv-infra, see requirements-infra.txt)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.infra.bicep_tree import REPO


def infra_tool(name: str) -> Path:
    """The tool in .venv-infra; skipped locally when that venv is absent, a failure on CI."""
    tool = REPO / ".venv-infra" / "bin" / name
    if not tool.exists():
        message = (
            f"{tool} is missing: python -m venv .venv-infra && "
            ".venv-infra/bin/pip install -r requirements-infra.txt"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return tool


def app_tool(name: str) -> Path:
    """A console script installed beside the running interpreter (requirements-dev.txt)."""
    return Path(sys.executable).parent / name
