"""openapi.yaml is valid OpenAPI 3.1, describes the API, and the gateway agrees with it."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import yaml
from openapi_spec_validator import validate

from tests.infra.bicep_tree import INFRA, REPO

METHODS = ("get", "post", "put", "patch", "delete")
# The only requests without a bearer token (plus the readiness probe).
ANONYMOUS = {
    ("get", "/health"),
    ("get", "/health/ready"),
    ("get", "/musicals"),
    ("get", "/musicals/{id}"),
    ("get", "/performances/{id}"),
    ("get", "/performances/{id}/seats"),
}


@cache
def _spec() -> dict[str, Any]:
    return yaml.safe_load((REPO / "openapi.yaml").read_text(encoding="utf-8"))


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a mapping naming one key twice (safe_load keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:
            raise yaml.constructor.ConstructorError(
                None, None, f"keys given twice: {twice}", node.start_mark
            )
        return super().construct_mapping(node, deep=deep)


def test_no_mapping_names_a_key_twice() -> None:
    text = (REPO / "openapi.yaml").read_text(encoding="utf-8")
    assert yaml.load(text, Loader=_UniqueKeyLoader) == _spec()


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in _spec()["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = _spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_openapi_document_is_valid_openapi_3_1() -> None:
    validate(_spec())
    assert _spec()["openapi"].startswith("3.1")


def test_every_contract_endpoint_is_described() -> None:
    described = {(method, path) for method, path, _ in _operations()}
    assert described == {
        ("get", "/health"),
        ("get", "/health/ready"),
        ("post", "/musicals"),
        ("get", "/musicals"),
        ("get", "/musicals/{id}"),
        ("get", "/performances/{id}"),
        ("get", "/performances/{id}/seats"),
        ("post", "/reservations"),
        ("get", "/reservations/{id}"),
        ("post", "/reservations/{id}/cancel"),
        ("get", "/history"),
    }


def test_only_the_contract_anonymous_endpoints_skip_the_bearer_token() -> None:
    assert _spec()["security"] == [{"bearer": []}]
    anonymous = {(m, p) for m, p, op in _operations() if op.get("security") == []}
    assert anonymous == ANONYMOUS


def test_every_response_carries_the_correlation_id_header() -> None:
    for method, path, operation in _operations():
        for status, response in operation["responses"].items():
            assert "X-Correlation-Id" in _resolve(response).get("headers", {}), (
                method,
                path,
                status,
            )


def test_every_error_is_problem_json_except_readiness() -> None:
    for _method, path, operation in _operations():
        for status, response in operation["responses"].items():
            if int(status) >= 400 and path != "/health/ready":
                assert "application/problem+json" in _resolve(response)["content"], (path, status)


def test_authenticated_endpoints_answer_401() -> None:
    for method, path, operation in _operations():
        if (method, path) not in ANONYMOUS:
            assert "401" in operation["responses"], (method, path)


def test_refused_orders_answer_503_with_retry_after() -> None:
    response = _resolve(_spec()["paths"]["/reservations"]["post"]["responses"]["503"])
    assert "Retry-After" in response["headers"]


def test_reservation_body_has_the_contract_bounds() -> None:
    seats = _spec()["components"]["schemas"]["NewReservation"]["properties"]["seats"]
    assert (seats["type"], seats["minimum"], seats["maximum"]) == ("integer", 1, 10)


def test_musical_body_has_the_contract_bounds() -> None:
    props = _spec()["components"]["schemas"]["NewMusical"]["properties"]
    assert (props["title"]["minLength"], props["title"]["maxLength"]) == (1, 200)
    assert (props["seats"]["minimum"], props["seats"]["maximum"]) == (1, 100_000)
    assert (props["price"]["minimum"], props["price"]["maximum"]) == (0, 10_000_000)


def test_lists_take_limit_and_continuation_token() -> None:
    limit = _spec()["components"]["parameters"]["Limit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 100, 50)
    for path in ("/musicals", "/history"):
        refs = {p["$ref"] for p in _spec()["paths"][path]["get"]["parameters"]}
        assert {
            "#/components/parameters/Limit",
            "#/components/parameters/ContinuationToken",
        } <= refs


def test_gateway_lets_exactly_the_anonymous_operations_through_without_a_token() -> None:
    policy = (INFRA / "policies" / "api.xml").read_text(encoding="utf-8")
    listed = re.search(r"new \[\] \{ (?P<ids>[^}]*) \}", policy)
    assert listed is not None
    in_policy = set(re.findall(r'"(\w+)"', listed["ids"]))
    in_spec = {op["operationId"].lower() for m, p, op in _operations() if (m, p) in ANONYMOUS}
    assert in_policy == in_spec
