"""Options several subcommands share, defined once."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_DATA_DIR = ".outerpark"


def add_data_dir(parser: argparse.ArgumentParser, what: str) -> None:
    """`--data-dir` (README, "The local host"): flag, else OUTERPARK_DATA_DIR, else ./.outerpark."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("OUTERPARK_DATA_DIR", DEFAULT_DATA_DIR)),
        help=f"{what} (OUTERPARK_DATA_DIR, default ./{DEFAULT_DATA_DIR})",
    )
