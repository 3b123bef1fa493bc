"""The deployment package keeps the app and leaves out what .funcignore names."""

from __future__ import annotations

import ast
import zipfile
from pathlib import Path

import pytest

from infra.scripts.package import build_package, is_ignored, read_patterns
from shared.settings import Settings
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


def test_the_build_id_travels_in_the_package_and_the_settings_read_it(tmp_path: Path) -> None:
    source = tmp_path / "app"
    _tree(source, ["function_app.py", "build.env"])
    output = tmp_path / "app.zip"
    build_package(source, output, build_id="20261205.7")
    archive = zipfile.ZipFile(output)
    assert archive.namelist().count("build.env") == 1
    written = archive.read("build.env").decode()
    assert written == "OUTERPARK_BUILD_ID=20261205.7\n"
    (tmp_path / "build.env").write_text(written, encoding="utf-8")
    settings = Settings(_env_file=tmp_path / "build.env")
    assert settings.build_id == "20261205.7"


def test_a_build_id_that_could_break_the_env_file_is_refused(tmp_path: Path) -> None:
    _tree(tmp_path / "app", ["function_app.py"])
    with pytest.raises(ValueError, match="build id"):
        build_package(tmp_path / "app", tmp_path / "app.zip", build_id="1\nCOSMOS_KEY=x")


def test_without_a_build_id_the_app_says_it_runs_a_local_build(tmp_path: Path) -> None:
    assert Settings(_env_file=tmp_path / "absent.env").build_id == "local"


def test_the_repository_funcignore_leaves_out_node_and_test_files() -> None:
    patterns = read_patterns(REPO / ".funcignore")
    for name in ("package.json", "package-lock.json", "conftest.py", "test_payments.py"):
        assert is_ignored(Path(name), is_dir=False, patterns=patterns), name
    assert is_ignored(Path("shared/test_x.py"), is_dir=False, patterns=patterns)
    assert is_ignored(Path(".devcontainer"), is_dir=True, patterns=patterns)
    for name in ("local.settings.json", "local.settings.json.template", "azure.yaml"):
        assert is_ignored(Path(name), is_dir=False, patterns=patterns), name
