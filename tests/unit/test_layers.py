"""Dependencies point inward: the domain needs only pydantic, the use cases no composition
root, and nothing in the app reaches for the local host."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (REPO / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _modules("shared/domain"), ids=lambda p: p.name)
def test_the_domain_imports_only_the_standard_library_pydantic_and_itself(path: Path) -> None:
    foreign = {
        name
        for name in _imports(path)
        if name.split(".")[0] not in sys.stdlib_module_names
        and name.split(".")[0] != "pydantic"
        and not name.startswith("shared.domain")
    }
    assert foreign == set()


@pytest.mark.parametrize(
    "path", _modules("shared/handlers", "shared/projection"), ids=lambda p: p.name
)
def test_use_cases_take_their_dependencies_and_never_the_composition_root(path: Path) -> None:
    outer = {n for n in _imports(path) if n.startswith(("shared.bootstrap", "shared.api"))}
    assert outer == set()
