"""Render the repository's OpenAPI 3.1 description as OpenAPI 3.0.3, for API Management.

API Management imports OpenAPI 3.1 only in part (type arrays and `info.summary` fail the import,
and a failed import fails the whole deployment), so the build gives it a 3.0.3 rendering of the
one source, `openapi.yaml`. The rendering keeps every path and operation; it rewrites the JSON
Schema 2020-12 keywords that 3.0 lacks into their 3.0 spelling where one exists and drops the
few that only document:

- `type: [T, 'null']` → `type: T` + `nullable: true`; several non-null types → `anyOf`;
  `type: 'null'` alone → `nullable: true`; a `null` branch of `oneOf`/`anyOf` → `nullable`;
- `const: v` → `enum: [v]`; `examples: [...]` in a schema → `example` (the first);
- numeric `exclusiveMinimum`/`exclusiveMaximum` → `minimum`/`maximum` with the boolean form;
- `$ref` with sibling keywords in a schema → `allOf: [{$ref}]` beside them (3.0 ignores
  siblings of a `$ref`); elsewhere the siblings (`summary`, `description`) are dropped;
- `info.summary`, `license.identifier`, `webhooks`, `jsonSchemaDialect`, `$schema`, `$id`,
  `$comment`, and 2020-12 keywords 3.0 has no form for are dropped.

A source that uses what 3.0 cannot express at all (`$defs`, `components.pathItems`) is refused
rather than rendered wrong.

    python infra/scripts/openapi30.py --source openapi.yaml --output infra/generated/openapi30.json
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import yaml

TARGET_VERSION = "3.0.3"
NULL = "null"

# JSON Schema keywords of 2020-12 that OpenAPI 3.0's schema object does not know.
_DROPPED_SCHEMA_KEYWORDS = frozenset(
    {
        "$schema",
        "$id",
        "$anchor",
        "$dynamicAnchor",
        "$dynamicRef",
        "$comment",
        "contentMediaType",
        "contentEncoding",
        "contentSchema",
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        "prefixItems",
        "unevaluatedItems",
        "unevaluatedProperties",
        "propertyNames",
        "patternProperties",
        "contains",
        "minContains",
        "maxContains",
    }
)
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SUBSCHEMA_SINGLE = ("not", "items")
# Keys under which an OpenAPI object holds examples, never schemas: not walked.
_EXAMPLE_KEYS = frozenset({"example", "examples"})


class NotRenderableError(ValueError):
    """The 3.1 source uses something OpenAPI 3.0 cannot express."""


def render(source: dict[str, Any]) -> dict[str, Any]:
    """The 3.0.3 rendering of a 3.1 document (the source is left untouched)."""
    if not str(source.get("openapi", "")).startswith("3.1"):
        raise NotRenderableError(f"expected an OpenAPI 3.1 document, got {source.get('openapi')!r}")
    document = copy.deepcopy(source)
    if document.get("components", {}).get("pathItems"):
        raise NotRenderableError("components.pathItems has no OpenAPI 3.0 form")
    document["openapi"] = TARGET_VERSION
    document.pop("webhooks", None)
    document.pop("jsonSchemaDialect", None)
    document.setdefault("paths", {})
    info = document.get("info", {})
    info.pop("summary", None)
    if isinstance(info.get("license"), dict):
        info["license"].pop("identifier", None)
    schemes = document.get("components", {}).get("securitySchemes", {})
    for name in [n for n, scheme in schemes.items() if scheme.get("type") == "mutualTLS"]:
        del schemes[name]
    return _walk(document)


def _walk(node: Any) -> Any:
    """Convert every schema found in a non-schema part of the document."""
    if isinstance(node, list):
        return [_walk(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {"$ref": node["$ref"]}
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key in _EXAMPLE_KEYS:
            converted[key] = value
        elif key == "schema" and isinstance(value, dict):
            converted[key] = convert_schema(value)
        elif key == "schemas" and isinstance(value, dict):
            converted[key] = {name: convert_schema(schema) for name, schema in value.items()}
        else:
            converted[key] = _walk(value)
    return converted


def convert_schema(schema: Any) -> Any:
    """One JSON Schema 2020-12 schema as an OpenAPI 3.0 schema object."""
    if isinstance(schema, bool):
        return {} if schema else {"not": {}}
    if not isinstance(schema, dict):
        return schema
    if "$defs" in schema:
        raise NotRenderableError("$defs has no OpenAPI 3.0 form; move them to components.schemas")
    if "$ref" in schema:
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        if not siblings:
            return {"$ref": schema["$ref"]}
        return convert_schema({**siblings, "allOf": [{"$ref": schema["$ref"]}]})
    out: dict[str, Any] = {}
    nullable = False
    for key, value in schema.items():
        if key not in _DROPPED_SCHEMA_KEYWORDS:
            nullable |= _convert_keyword(out, key, value)
    if nullable:
        out["nullable"] = True
    return out


def _convert_keyword(out: dict[str, Any], key: str, value: Any) -> bool:
    """Write one keyword of a schema in its 3.0 form; return whether it admits null."""
    if key == "type":
        return _set_type(out, value)
    if key in _SUBSCHEMA_LISTS:
        branches = [convert_schema(sub) for sub in value]
        kept = [b for b in branches if not _is_null_only(b)]
        _set_branches(out, key, kept)
        return len(kept) < len(branches)
    if key == "const":
        out["enum"] = [value]
    elif key == "examples":
        if isinstance(value, list) and value:
            out.setdefault("example", value[0])
    elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
        out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
        out[key] = True
    elif key == "properties":
        out[key] = {name: convert_schema(sub) for name, sub in value.items()}
    elif key in _SUBSCHEMA_SINGLE or (key == "additionalProperties" and isinstance(value, dict)):
        out[key] = convert_schema(value)
    else:
        out[key] = value
    return False


def _set_type(out: dict[str, Any], value: Any) -> bool:
    """Write a 3.0 `type` (or `anyOf` of types); return whether null was allowed."""
    types = value if isinstance(value, list) else [value]
    concrete = [t for t in types if t != NULL]
    if len(concrete) == 1:
        out["type"] = concrete[0]
    elif concrete:
        out.setdefault("anyOf", []).extend({"type": t} for t in concrete)
    return len(concrete) < len(types)


def _set_branches(out: dict[str, Any], key: str, kept: list[dict[str, Any]]) -> None:
    """Keep the branches; one left of a `oneOf`/`anyOf` (its null branch gone) is the schema
    itself, written inline so that the `nullable` beside it applies to it."""
    if len(kept) == 1 and key != "allOf" and not set(kept[0]) & set(out):
        out.update(kept[0])
    elif len(kept) == 1 and key != "allOf":
        out.setdefault("allOf", []).append(kept[0])
    elif kept:
        out.setdefault(key, []).extend(kept)


def _is_null_only(schema: dict[str, Any]) -> bool:
    """A branch that admits only null: `{type: 'null'}` once converted."""
    return schema == {"nullable": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("openapi.yaml"))
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    source = yaml.safe_load(args.source.read_text(encoding="utf-8"))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(render(source), indent=2) + "\n", encoding="utf-8")
    print(f"{args.output}: OpenAPI {TARGET_VERSION} rendering of {args.source}")


if __name__ == "__main__":
    main()
