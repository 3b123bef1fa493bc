"""Fail unless an Azure DevOps environment exists (and, with --require-checks, has checks).

A YAML deployment job that names an environment which does not exist creates it, with no
approvals or checks (docs/azure-platform.md): a typo, or a project set up without it, would
deploy to production unguarded. This runs before the deployment stage and refuses instead.
It reads the project's environments with the job's access token (System.AccessToken); the
project's build service needs Reader on the environment (docs/deploy.md).

    python infra/scripts/require_environment.py outerpark-prod --require-checks true
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import urllib.parse
import urllib.request
from typing import Any

# Both resources are preview in the REST reference (Environments - List, Check Configurations -
# List): a version without "-preview" is refused (docs/azure-platform.md).
API_VERSION = "7.2-preview.1"
CHECKS_API_VERSION = "7.2-preview.1"


class EnvironmentMissingError(RuntimeError):
    pass


def _get(url: str, token: str) -> dict[str, Any]:
    basic = base64.b64encode(f":{token}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {basic}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def require_environment(
    collection_uri: str, project: str, token: str, name: str, require_checks: bool
) -> int:
    """The environment's id; EnvironmentMissingError when it is absent or unguarded."""
    base = f"{collection_uri.rstrip('/')}/{urllib.parse.quote(project)}/_apis/pipelines"
    query = urllib.parse.urlencode({"name": name, "api-version": API_VERSION})
    listed = _get(f"{base}/environments?{query}", token).get("value", [])
    found = [e for e in listed if e.get("name") == name]
    if not found:
        raise EnvironmentMissingError(
            f"environment {name!r} does not exist (or this pipeline may not read it): create it "
            "with its approvals and checks first (docs/deploy.md); it is never created implicitly"
        )
    environment_id = int(found[0]["id"])
    if require_checks:
        query = urllib.parse.urlencode(
            {
                "resourceType": "environment",
                "resourceId": environment_id,
                "api-version": CHECKS_API_VERSION,
            }
        )
        checks = _get(f"{base}/checks/configurations?{query}", token).get("value", [])
        if not checks:
            raise EnvironmentMissingError(
                f"environment {name!r} has no approvals or checks: add them before deploying to it"
            )
    return environment_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument(
        "--require-checks",
        type=lambda value: value.lower() == "true",
        default=False,
        help="true: the environment must also have approvals or checks",
    )
    args = parser.parse_args()
    try:
        environment_id = require_environment(
            os.environ["SYSTEM_COLLECTIONURI"],
            os.environ["SYSTEM_TEAMPROJECT"],
            os.environ["SYSTEM_ACCESSTOKEN"],
            args.name,
            args.require_checks,
        )
    except EnvironmentMissingError as error:
        print(f"##vso[task.logissue type=error]{error}")
        sys.exit(1)
    print(f"environment {args.name} exists (id {environment_id})")


if __name__ == "__main__":
    main()
