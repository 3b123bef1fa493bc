"""The deployment package keeps the app and leaves out what .funcignore names."""

from __future__ import annotations

import ast
import zipfile
from pathlib import Path

from infra.scripts.package import build_package, is_ignored, read_patterns
from tests.infra.bicep_tree import REPO


def _tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x", encoding="utf-8")


def test_package_keeps_the_app_and_drops_ignored_folders_and_files(tmp_path: Path) -> None:
    source = tmp_path / "app"
    _tree(
        source,
        [
            "function_app.py",
            "host.json",
            "shared/settings.py",
            "functions/health.py",
            "tests/test_x.py",
            "devhost/host.py",
            "shared/__pycache__/settings.cpython-311.pyc",
            "docs/readme.md",
        ],
    )
    (source / ".funcignore").write_text("# comment\ntests/\ndevhost/\n__pycache__/\ndocs\n")
    output = tmp_path / "app.zip"
    build_package(source, output)
    names = set(zipfile.ZipFile(output).namelist())
    assert names == {
        ".funcignore",
        "function_app.py",
        "host.json",
        "shared/settings.py",
        "functions/health.py",
    }


def test_folder_patterns_do_not_match_files_of_the_same_name() -> None:
    assert not is_ignored(Path("tests"), is_dir=False, patterns=["tests/"])
    assert is_ignored(Path("tests"), is_dir=True, patterns=["tests/"])


def test_patterns_with_a_slash_match_from_the_root_only() -> None:
    assert is_ignored(Path("shared/local.json"), is_dir=False, patterns=["shared/*.json"])
    assert not is_ignored(Path("other/shared/local.json"), is_dir=False, patterns=["shared/*.json"])


def test_the_repository_funcignore_leaves_out_local_and_test_code() -> None:
    patterns = read_patterns(REPO / ".funcignore")
    for folder in (
        "devhost",
        "tests",
        "bench",
        "infra",
        "node_modules",
        ".venv",
        ".venv-infra",
        "docs",
    ):
        assert is_ignored(Path(folder), is_dir=True, patterns=patterns), folder
    for kept in ("function_app.py", "host.json", "requirements.txt"):
        assert not is_ignored(Path(kept), is_dir=False, patterns=patterns), kept
    for folder in ("shared", "functions", ".python_packages"):
        assert not is_ignored(Path(folder), is_dir=True, patterns=patterns), folder


LOCAL_ONLY_IMPORTS = {"sqlite3", "socket", "devhost", "tests", "bench"}


def _imported_roots(source: str) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_built_package_holds_the_app_and_no_local_only_module(tmp_path: Path) -> None:
    output = tmp_path / "app.zip"
    build_package(REPO, output)
    with zipfile.ZipFile(output) as archive:
        modules = {n: archive.read(n).decode() for n in archive.namelist() if n.endswith(".py")}
    assert {"function_app.py", "shared/bootstrap.py", "functions/reservations.py"} <= set(modules)
    assert not [n for n in modules if not n.startswith(("shared/", "functions/", "function_app"))]
    offenders = {
        name: sorted(_imported_roots(source) & LOCAL_ONLY_IMPORTS)
        for name, source in modules.items()
        if _imported_roots(source) & LOCAL_ONLY_IMPORTS
    }
    assert offenders == {}
