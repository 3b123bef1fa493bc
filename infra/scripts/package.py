"""Zip the Function App for deployment, leaving out what .funcignore names.

`.funcignore` uses a subset of .gitignore syntax: one pattern a line, `#` comments, a trailing
`/` for folders, `*` wildcards; a pattern without `/` matches a file or folder name at any depth.
Dependencies are expected in `.python_packages/lib/site-packages` (pip install --target), which
Flex Consumption loads as they are. `--build-id` adds `build.env` (`OUTERPARK_BUILD_ID=<id>`),
read by shared/settings.py: the build id travels with the code, so the health endpoints name
the build that actually answers.

    python infra/scripts/package.py --source . --output app.zip --build-id 1234
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path


def read_patterns(funcignore: Path) -> list[str]:
    """The patterns of a .funcignore file, comments and blank lines left out."""
    if not funcignore.exists():
        return []
    lines = (line.strip() for line in funcignore.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def is_ignored(relative: Path, is_dir: bool, patterns: list[str]) -> bool:
    """Whether a path (relative to the app root) matches one of the patterns."""
    for raw in patterns:
        dir_only = raw.endswith("/")
        pattern = raw.rstrip("/").lstrip("/")
        if dir_only and not is_dir:
            continue
        if "/" in pattern:
            if fnmatch.fnmatch(relative.as_posix(), pattern):
                return True
        elif fnmatch.fnmatch(relative.name, pattern):
            return True
    return False


def package_files(root: Path, patterns: list[str]) -> Iterator[Path]:
    """Every file under root that the patterns keep, ignored folders not entered."""
    for entry in sorted(root.iterdir()):
        relative = entry.relative_to(root)
        yield from _walk(root, relative, patterns)


def _walk(root: Path, relative: Path, patterns: list[str]) -> Iterator[Path]:
    path = root / relative
    if is_ignored(relative, path.is_dir(), patterns):
        return
    if path.is_dir():
        for child in sorted(path.iterdir()):
            yield from _walk(root, relative / child.name, patterns)
    elif path.is_file():
        yield relative


BUILD_ENV = "build.env"
_BUILD_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def build_package(root: Path, output: Path, build_id: str | None = None) -> list[Path]:
    """Write the zip and return the paths it holds (with build.env when a build id is given)."""
    patterns = [*read_patterns(root / ".funcignore"), BUILD_ENV]
    files = [f for f in package_files(root, patterns) if (root / f).resolve() != output.resolve()]
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for relative in files:
            archive.write(root / relative, relative.as_posix())
        if build_id is not None:
            if not _BUILD_ID.match(build_id):
                raise ValueError(f"build id {build_id!r}: 1-64 of A-Z a-z 0-9 . _ -")
            archive.writestr(BUILD_ENV, f"OUTERPARK_BUILD_ID={build_id}\n")
            files.append(Path(BUILD_ENV))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path())
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--build-id", help="the pipeline build id, written to build.env")
    args = parser.parse_args()
    files = build_package(args.source, args.output, args.build_id)
    print(f"{args.output}: {len(files)} files")


if __name__ == "__main__":
    main()
