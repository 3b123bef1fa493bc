"""A child process for devhost.children's tests: notes each start in `--starts`, then exits
with `--exit-code` on its first start (as a crash would) or runs until SIGTERM or the end of
its lifeline (`--lifeline`, which devhost.children passes)."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path

from devhost.lifeline import watch_lifeline


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=Path, required=True)
    parser.add_argument("--exit-code", type=int)
    parser.add_argument("--lifeline", type=int)
    args = parser.parse_args()
    first_start = not args.starts.exists()
    with args.starts.open("a") as starts:
        starts.write(f"{os.getpid()}\n")
    if first_start and args.exit_code is not None:
        return args.exit_code
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    if args.lifeline is not None:
        watch_lifeline(args.lifeline, stopped.set)
    stopped.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
