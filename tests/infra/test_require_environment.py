"""The pipeline refuses to deploy to an Azure DevOps environment that is missing or unguarded,
asked over HTTP of a local stand-in for the Azure DevOps REST API."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from infra.scripts.require_environment import EnvironmentMissingError, require_environment

TOKEN = "job-token"


class _DevOps:
    """Environments by name and check configurations by environment id."""

    def __init__(self) -> None:
        self.environments: dict[str, int] = {}
        self.checks: dict[int, int] = {}
        self.paths: list[str] = []


@pytest.fixture
def devops() -> Iterator[tuple[str, _DevOps]]:
    state = _DevOps()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            expected = "Basic " + base64.b64encode(f":{TOKEN}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.end_headers()
                return
            url = urlparse(self.path)
            query = parse_qs(url.query)
            state.paths.append(url.path)
            if "-preview" not in query["api-version"][0]:
                # Azure DevOps refuses a preview resource asked for without "-preview".
                self.send_response(400)
                self.end_headers()
                return
            if url.path.endswith("/_apis/pipelines/environments"):
                name = query["name"][0]
                found = (
                    [{"id": state.environments[name], "name": name}]
                    if name in state.environments
                    else []
                )
                body = {"count": len(found), "value": found}
            else:
                count = state.checks.get(int(query["resourceId"][0]), 0)
                body = {"count": count, "value": [{"id": i} for i in range(count)]}
            payload = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/org/", state
    server.shutdown()
    server.server_close()


def test_a_missing_environment_is_an_error_not_a_new_environment(devops) -> None:
    url, state = devops
    with pytest.raises(EnvironmentMissingError, match="never created implicitly"):
        require_environment(url, "Outer Park", TOKEN, "outerpark-prod", require_checks=False)
    assert state.paths == ["/org/Outer%20Park/_apis/pipelines/environments"]


def test_an_environment_without_checks_is_refused_for_prod(devops) -> None:
    url, state = devops
    state.environments["outerpark-prod"] = 7
    with pytest.raises(EnvironmentMissingError, match="no approvals or checks"):
        require_environment(url, "op", TOKEN, "outerpark-prod", require_checks=True)


def test_a_guarded_environment_passes(devops) -> None:
    url, state = devops
    state.environments["outerpark-prod"] = 7
    state.checks[7] = 2
    assert require_environment(url, "op", TOKEN, "outerpark-prod", require_checks=True) == 7


def test_dev_needs_the_environment_but_not_its_checks(devops) -> None:
    url, state = devops
    state.environments["outerpark-dev"] = 3
    assert require_environment(url, "op", TOKEN, "outerpark-dev", require_checks=False) == 3
