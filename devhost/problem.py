"""RFC 9457 problem responses the host itself answers (404, 405, 413, 500)."""

from __future__ import annotations

import json
from http import HTTPStatus

PROBLEM_JSON = b"application/problem+json"


def problem_body(status: int, detail: str) -> bytes:
    return json.dumps(
        {
            "type": "about:blank",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": detail,
        }
    ).encode()
