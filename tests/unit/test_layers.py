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


def _port_names() -> set[str]:
    """The Protocols of shared/ports.py: the kinds of dependency a use case can be handed."""
    tree = ast.parse((REPO / "shared/ports.py").read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(isinstance(base, ast.Name) and base.id == "Protocol" for base in node.bases)
    }


def _use_cases(path: Path) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and not node.name.startswith("_")
    ]


@pytest.mark.parametrize(
    "path", _modules("shared/handlers", "shared/projection"), ids=lambda p: p.name
)
def test_a_use_case_takes_one_port_or_one_deps_and_reads_time_from_its_clock(path: Path) -> None:
    """The convention in docs/architecture.md: a use case that needs one port takes it; one
    that needs more takes one frozen `*Deps`; time comes from a `Clock`, never a `now`."""
    ports = _port_names()
    assert {"DocumentStore", "Clock"} <= ports
    broken = []
    for function in _use_cases(path):
        parameters = [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]
        names = [parameter.arg for parameter in parameters]
        annotations = [ast.unparse(p.annotation) for p in parameters if p.annotation is not None]
        given_ports = [a for a in annotations if a in ports]
        if "now" in names or "Services" in annotations or len(given_ports) > 1:
            broken.append(function.name)
    assert broken == []


@pytest.mark.parametrize(
    "path", _modules("shared/handlers", "shared/projection"), ids=lambda p: p.name
)
def test_every_deps_of_a_use_case_is_a_frozen_dataclass(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    deps = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.endswith("Deps")]
    assert all("dataclass(frozen=True)" in map(ast.unparse, d.decorator_list) for d in deps)
