"""Fixtures of the infrastructure tests: the app's function metadata, read once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.bicep_tree import REPO


@pytest.fixture(scope="session")
def function_bindings() -> list[tuple[str, dict[str, Any]]]:
    """(function name, binding) for every binding of every function of function_app.py."""
    if not (REPO / "function_app.py").exists():
        pytest.skip("function_app.py is not there yet")
    from devhost.metadata import functions_of
    from function_app import app

    return [
        (spec.name, binding)
        for spec in functions_of(app)
        for binding in (spec.trigger, *spec.bindings)
    ]
