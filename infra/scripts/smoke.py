"""After an app deployment: wait until the new build answers, then until it is ready.

Polls `GET {gateway}/api/health` until its `build` is the build just deployed (the previous one
keeps answering while instances are replaced), then `GET {gateway}/api/health/ready` until 200.
Both through API Management, as callers reach the app. Exit status 1 when the time is up.

    python infra/scripts/smoke.py --gateway https://apim-....azure-api.net --build-id 1234
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable

Probe = Callable[[str], tuple[int, dict[str, object]]]


def http_get(url: str, timeout: float = 10.0) -> tuple[int, dict[str, object]]:
    """Status and JSON body of a GET; (0, {}) when nothing answered."""
    request = urllib.request.Request(url, headers={"X-Correlation-Id": "deploy-smoke-test"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _json(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _json(error.read())
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return 0, {}


def _json(raw: bytes) -> dict[str, object]:
    try:
        body = json.loads(raw)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def wait_for(
    check: Callable[[], bool], attempts: int, interval: float, sleep: Callable[[float], None]
) -> bool:
    for attempt in range(attempts):
        if check():
            return True
        if attempt + 1 < attempts:
            sleep(interval)
    return False


def smoke_test(
    gateway: str,
    build_id: str,
    *,
    attempts: int = 60,
    interval: float = 10.0,
    probe: Probe = http_get,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] = print,
) -> bool:
    base = gateway.rstrip("/") + "/api"

    def new_build_answers() -> bool:
        status, body = probe(f"{base}/health")
        say(f"GET /api/health: {status}, build {body.get('build')!r} (waiting for {build_id!r})")
        return status == 200 and body.get("build") == build_id

    def ready() -> bool:
        status, body = probe(f"{base}/health/ready")
        say(f"GET /api/health/ready: {status} {json.dumps(body)}")
        return status == 200 and body.get("build") == build_id

    if not wait_for(new_build_answers, attempts, interval, sleep):
        say(f"build {build_id} never answered through {gateway}")
        return False
    if not wait_for(ready, attempts, interval, sleep):
        say(f"build {build_id} answers but never became ready")
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", required=True, help="API Management gateway URL")
    parser.add_argument("--build-id", required=True)
    parser.add_argument("--attempts", type=int, default=60)
    parser.add_argument("--interval", type=float, default=10.0)
    args = parser.parse_args()
    ok = smoke_test(args.gateway, args.build_id, attempts=args.attempts, interval=args.interval)
    if not ok:
        print(f"##vso[task.logissue type=error]build {args.build_id} is not serving and ready")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
