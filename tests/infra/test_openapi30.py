"""API Management imports a valid OpenAPI 3.0.3 rendering of openapi.yaml with the same API."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator, validate

from infra.scripts.openapi30 import NotRenderableError, convert_schema, render
from tests.infra.bicep_tree import INFRA, REPO, module, resource_config

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@cache
def _source() -> dict[str, Any]:
    return yaml.safe_load((REPO / "openapi.yaml").read_text(encoding="utf-8"))


def _operations(document: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (method, path, operation.get("operationId", ""))
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def _values_of(node: Any, key: str) -> list[Any]:
    """Every value held under `key` anywhere in the document."""
    found: list[Any] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                found.append(v)
            found.extend(_values_of(v, key))
    elif isinstance(node, list):
        for item in node:
            found.extend(_values_of(item, key))
    return found


def _minimal(schema: dict[str, Any]) -> dict[str, Any]:
    """A tiny valid 3.1 document whose one response has the given schema."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1", "summary": "s"},
        "paths": {
            "/x": {
                "get": {
                    "operationId": "getX",
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {"application/json": {"schema": schema}},
                        }
                    },
                }
            }
        },
    }


def test_the_repository_source_is_still_openapi_3_1() -> None:
    validate(_source(), cls=OpenAPIV31SpecValidator)


def test_the_rendering_of_the_repository_source_validates_as_openapi_3_0() -> None:
    rendered = render(_source())
    assert rendered["openapi"] == "3.0.3"
    validate(rendered, cls=OpenAPIV30SpecValidator)


def test_the_rendering_has_the_same_operations_and_schemas_as_the_source() -> None:
    rendered = render(_source())
    assert _operations(rendered) == _operations(_source())
    assert set(rendered["components"]["schemas"]) == set(_source()["components"]["schemas"])
    assert rendered["security"] == _source()["security"]


def test_the_rendering_keeps_nothing_api_management_fails_on() -> None:
    rendered = render(_source())
    assert "summary" not in rendered["info"]
    assert not [t for t in _values_of(rendered, "type") if isinstance(t, list) or t == "null"]
    assert not _values_of(rendered["components"]["schemas"], "const")


def test_the_script_writes_the_rendering_as_json(tmp_path: Path) -> None:
    output = tmp_path / "generated" / "openapi30.json"
    subprocess.run(
        [sys.executable, "infra/scripts/openapi30.py", "--output", str(output)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    assert json.loads(output.read_text(encoding="utf-8")) == render(_source())


def test_a_nullable_type_becomes_a_type_marked_nullable() -> None:
    assert convert_schema({"type": ["string", "null"], "format": "date-time"}) == {
        "type": "string",
        "format": "date-time",
        "nullable": True,
    }


def test_several_types_become_any_of() -> None:
    assert convert_schema({"type": ["string", "integer", "null"]}) == {
        "anyOf": [{"type": "string"}, {"type": "integer"}],
        "nullable": True,
    }


def test_a_null_branch_of_one_of_makes_the_other_branch_nullable() -> None:
    schema = {
        "description": "d",
        "oneOf": [{"type": "null"}, {"type": "object", "properties": {"a": {"const": 1}}}],
    }
    assert convert_schema(schema) == {
        "description": "d",
        "type": "object",
        "properties": {"a": {"enum": [1]}},
        "nullable": True,
    }


def test_numeric_exclusive_bounds_take_the_boolean_form() -> None:
    assert convert_schema({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 5}) == {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 5,
        "exclusiveMaximum": True,
    }


def test_a_reference_with_siblings_keeps_them_beside_an_all_of() -> None:
    assert convert_schema({"$ref": "#/components/schemas/A", "description": "why"}) == {
        "description": "why",
        "allOf": [{"$ref": "#/components/schemas/A"}],
    }


def test_schema_examples_become_one_example_and_2020_keywords_go() -> None:
    schema = {
        "type": "array",
        "examples": [[1], [2]],
        "prefixItems": [{}],
        "items": {"type": "integer"},
    }
    assert convert_schema(schema) == {"type": "array", "example": [1], "items": {"type": "integer"}}


def test_any_small_3_1_document_renders_to_a_valid_3_0_document() -> None:
    source = _minimal(
        {
            "type": "object",
            "properties": {
                "when": {"type": ["string", "null"]},
                "kind": {"type": ["string", "null"], "enum": ["a", None]},
                "tags": {"type": "array", "items": {"type": ["integer", "null"]}},
                "more": {"type": ["object", "null"], "additionalProperties": {"type": "integer"}},
            },
        }
    )
    source["info"]["license"] = {"name": "MIT", "identifier": "MIT"}
    source["webhooks"] = {"w": {"post": {"responses": {"200": {"description": "ok"}}}}}
    validate(source, cls=OpenAPIV31SpecValidator)
    rendered = render(source)
    validate(rendered, cls=OpenAPIV30SpecValidator)
    assert "webhooks" not in rendered
    assert rendered["info"]["license"] == {"name": "MIT"}


def test_the_source_document_is_left_as_it_was() -> None:
    source = _minimal({"type": ["string", "null"]})
    before = json.dumps(source, sort_keys=True)
    render(source)
    assert json.dumps(source, sort_keys=True) == before


@pytest.mark.parametrize(
    "document",
    [
        {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}},
        _minimal({"$defs": {"a": {"type": "string"}}, "$ref": "#/$defs/a"}),
        {
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "components": {"pathItems": {"p": {}}},
        },
    ],
    ids=["not-3.1", "defs", "path-items"],
)
def test_what_3_0_cannot_express_is_refused(document: dict[str, Any]) -> None:
    with pytest.raises(NotRenderableError):
        render(document)


def test_api_management_imports_the_generated_rendering() -> None:
    api = resource_config(module("apim"), "api")["properties"]
    assert api["format"] == "openapi+json"
    text = (INFRA / "modules" / "apim.bicep").read_text(encoding="utf-8")
    assert "loadTextContent('../generated/openapi30.json')" in text
    assert "openapi.yaml')" not in text
