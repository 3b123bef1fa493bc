"""`python -m devhost` as a subprocess on a free port, for end-to-end tests that use HTTP only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from signal import SIGKILL, SIGTERM
from typing import Self

import httpx

from devhost.tokens import issue_token
from shared.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEST_JWT_SECRET = "e2e-test-secret-of-sufficient-length-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DevHost:
    """One devhost process over one data dir; restartable on the same dir. `env` adds to (None:
    removes from) this process's environment; `args` are extra flags of `python -m devhost
    serve` (e.g. `--app` to host a fixture app)."""

    def __init__(
        self,
        data_dir: Path,
        env: Mapping[str, str | None] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        self.args = tuple(args)
        self.port = free_port()
        wanted = {
            **os.environ,
            "OUTERPARK_JWT_SECRET": TEST_JWT_SECRET,
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.env = {name: value for name, value in wanted.items() if value is not None}
        self.log_path = data_dir.parent / f"devhost-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=self.base_url, timeout=10.0)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self, timeout: float = 20.0) -> Self:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devhost",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                *self.args,
            ],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"devhost exited early:\n{self.logs()}")
            try:
                if self.client.get("/health").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"devhost did not become healthy:\n{self.logs()}")

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self, sig: int = SIGTERM, timeout: float = 15.0) -> int:
        self.signal(sig)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop(SIGKILL)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()
        self.client.close()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def token(self, sub: str, *, admin: bool = False, ttl: int = 3600) -> str:
        command = [sys.executable, "-m", "devhost", "token", "--sub", sub, "--ttl", str(ttl)]
        if admin:
            command += ["--role", "admin"]
        result = subprocess.run(
            command, cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True, check=True
        )
        return result.stdout.strip()

    def signed_token(self, sub: str) -> str:
        """A customer's token as `token` gives it, signed in this process instead: for tests
        that need many (each `python -m devhost token` costs a quarter of a second of CPU)."""
        settings = Settings(
            OUTERPARK_LOCAL_DEV=True,
            OUTERPARK_JWT_SECRET=self.env["OUTERPARK_JWT_SECRET"],
            AUTH_ISSUER=self.env.get("AUTH_ISSUER"),
            AUTH_AUDIENCE=self.env.get("AUTH_AUDIENCE"),
        )
        return issue_token(sub, settings=settings)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
