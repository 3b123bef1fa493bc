"""A Cosmos DB REST endpoint for the tests: @vercel/cosmosdb-server, or the account you name.

With `COSMOS_ENDPOINT` set (and `COSMOS_KEY`; `COSMOS_VERIFY_TLS=false` for the emulator's
self-signed certificate) the tests use that account or emulator. Otherwise they start the
in-memory server of `package.json` with node, on a free loopback port, over HTTPS with its
bundled self-signed certificate, and stop it when the session ends.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.cosmos import CosmosClient, DatabaseProxy, PartitionKey
from urllib3.exceptions import InsecureRequestWarning

from shared.adapters.cosmos_sql import composite_index
from shared.ports import OrderBy
from shared.topology import CONTAINERS, LEASES, ContainerSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_CLI = REPO_ROOT / "node_modules" / "@vercel" / "cosmosdb-server" / "lib" / "cli.js"
# The key every Cosmos emulator accepts; the test server accepts any key.
EMULATOR_KEY = (
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
)
START_TIMEOUT_SECONDS = 30
_READY = re.compile(r"Ready to accept HTTPS? connections at (?P<host>\S+):(?P<port>\d+)")


@dataclass(frozen=True)
class CosmosEndpoint:
    """Where the tests reach Cosmos DB, and whether this is the in-memory test server."""

    url: str
    key: str
    verify_tls: bool
    is_test_server: bool


def node_available() -> bool:
    return shutil.which("node") is not None and shutil.which("npm") is not None


def external_endpoint() -> CosmosEndpoint | None:
    """The account or emulator named by COSMOS_ENDPOINT, if any."""
    url = os.environ.get("COSMOS_ENDPOINT")
    if not url:
        return None
    verify = os.environ.get("COSMOS_VERIFY_TLS", "true").lower() not in {"0", "false", "no"}
    return CosmosEndpoint(
        url=url,
        key=os.environ.get("COSMOS_KEY", EMULATOR_KEY),
        verify_tls=verify,
        is_test_server=False,
    )


def cosmos_reachable() -> bool:
    """Whether the Cosmos tests can run here: an endpoint is configured or node can start one."""
    return external_endpoint() is not None or node_available()


def ensure_node_modules() -> None:
    """`npm ci` once, under a file lock so that parallel test workers do not race."""
    if SERVER_CLI.exists():
        return
    if not node_available():
        raise RuntimeError(
            "node and npm are needed to run the Cosmos DB test server "
            "(or set COSMOS_ENDPOINT and COSMOS_KEY to use an emulator or an account)"
        )
    with (REPO_ROOT / ".npm-ci.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not SERVER_CLI.exists():
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"],
                cwd=REPO_ROOT,
                check=True,
                capture_output=True,
                timeout=600,
            )


@contextmanager
def running_test_server() -> Iterator[CosmosEndpoint]:
    """Start @vercel/cosmosdb-server on a port the OS picks; stop it on exit."""
    ensure_node_modules()
    with tempfile.TemporaryDirectory(prefix="cosmosdb-server-") as directory:
        log_path = Path(directory) / "server.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                ["node", str(SERVER_CLI), "--host", "127.0.0.1", "--port", "0"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            port = _wait_for_ready(process, log_path)
            yield CosmosEndpoint(
                url=f"https://127.0.0.1:{port}/",
                key=EMULATOR_KEY,
                verify_tls=False,
                is_test_server=True,
            )
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_ready(process: subprocess.Popen[bytes], log_path: Path) -> int:
    """The port from the server's "Ready to accept HTTPS connections at host:port" line."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        match = _READY.search(log_path.read_text())
        if match:
            return int(match["port"])
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the Cosmos DB test server did not start:\n" + log_path.read_text())


_shared_lock = threading.Lock()
_shared_stack = ExitStack()
_shared: list[CosmosEndpoint] = []


def shared_endpoint() -> CosmosEndpoint:
    """The process's endpoint, started on first use and stopped when the process exits.

    Each pytest-xdist worker is a process of its own, so each gets its own server.
    """
    with _shared_lock:
        if not _shared:
            _shared.append(_shared_stack.enter_context(cosmos_endpoint()))
            atexit.register(_shared_stack.close)
        return _shared[0]


@contextmanager
def cosmos_endpoint() -> Iterator[CosmosEndpoint]:
    """The configured endpoint, or a test server running for as long as the context lasts."""
    external = external_endpoint()
    if external is not None:
        yield external
        return
    with running_test_server() as endpoint:
        yield endpoint


def create_database(
    endpoint: CosmosEndpoint,
    name: str | None = None,
    containers: Mapping[str, ContainerSpec] = CONTAINERS,
    composite_indexes: Mapping[str, Sequence[Sequence[OrderBy]]] | None = None,
) -> str:
    """Create a database holding `containers` and the leases container; returns its name.

    `composite_indexes` names, per container, the orderings its ordered queries use.
    """
    database_name = name or f"outerpark-test-{uuid.uuid4().hex[:12]}"
    with quiet_tls(endpoint):
        _create_containers(
            admin_client(endpoint).create_database_if_not_exists(database_name),
            {**containers, LEASES.name: LEASES},
            composite_indexes or {},
        )
    return database_name


def _create_containers(
    database: DatabaseProxy,
    containers: Mapping[str, ContainerSpec],
    orderings: Mapping[str, Sequence[Sequence[OrderBy]]],
) -> None:
    for spec in containers.values():
        options: dict[str, Any] = {}
        if spec.default_ttl is not None:
            options["default_ttl"] = spec.default_ttl
        if orderings.get(spec.name):
            options["indexing_policy"] = indexing_policy(orderings[spec.name])
        database.create_container_if_not_exists(
            spec.name, partition_key=PartitionKey(path=spec.partition_key), **options
        )


def indexing_policy(orderings: Sequence[Sequence[OrderBy]]) -> dict[str, Any]:
    """The default policy (every path indexed) plus one composite index per ordering."""
    return {
        "indexingMode": "consistent",
        "automatic": True,
        "includedPaths": [{"path": "/*"}],
        "excludedPaths": [{"path": '/"_etag"/?'}],
        "compositeIndexes": [composite_index(ordering) for ordering in orderings],
    }


def delete_database(endpoint: CosmosEndpoint, name: str) -> None:
    with quiet_tls(endpoint):
        admin_client(endpoint).delete_database(name)


def admin_client(endpoint: CosmosEndpoint) -> CosmosClient:
    """A key-authenticated client for creating and dropping test databases."""
    return CosmosClient(
        endpoint.url, credential=endpoint.key, connection_verify=endpoint.verify_tls
    )


@contextmanager
def quiet_tls(endpoint: CosmosEndpoint) -> Iterator[None]:
    """Silence urllib3's warning about the test server's known self-signed certificate."""
    with warnings.catch_warnings():
        if not endpoint.verify_tls:
            warnings.simplefilter("ignore", InsecureRequestWarning)
        yield
