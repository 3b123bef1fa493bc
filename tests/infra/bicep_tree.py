"""Reading the Bicep templates as data: pycep's JSON tree, its literal values, and .bicepparam
files (which pycep does not parse) turned into Bicep it does."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MODULES = INFRA / "modules"

_USING = re.compile(r"^using\s+'(?P<path>[^']+)'\s*$", re.MULTILINE)
_PARAM = re.compile(r"^param\s+(?P<name>\w+)\s*=", re.MULTILINE)


class NotLiteralError(ValueError):
    """The node is an expression, not a value written in the template."""


@cache
def parse_bicep(path: Path) -> dict[str, Any]:
    """pycep's tree of a .bicep file (parameters, variables, resources, modules, outputs)."""
    return BicepParser().parse(file_path=path)


@cache
def module(name: str) -> dict[str, Any]:
    return parse_bicep(MODULES / f"{name}.bicep")


def literal(node: Any) -> Any:
    """The plain value of a node written as a literal (negative numbers included)."""
    if node is None or isinstance(node, bool | int | str):
        return node
    if isinstance(node, list):
        return [literal(item) for item in node]
    if isinstance(node, dict):
        operator = node.get("operator")
        if isinstance(operator, dict) and operator.get("type") == "minus":
            return -literal(operator["operands"]["integer_value"])
        if "operator" in node or "function" in node:
            raise NotLiteralError(node)
        return {key: literal(value) for key, value in node.items()}
    raise NotLiteralError(node)


def variable(tree: dict[str, Any], name: str) -> Any:
    return literal(tree["variables"][name]["value"])


def resource_config(tree: dict[str, Any], symbol: str) -> dict[str, Any]:
    """A resource's body (the loop body for a resource declared with `for`)."""
    config = tree["resources"][symbol]["config"]
    return config["config"] if "loop_type" in config else config


@cache
def parse_bicepparam(path: Path) -> tuple[Path, dict[str, Any]]:
    """The template a .bicepparam file uses and its parameters' pycep nodes.

    `using '...'` is read aside and every `param NAME = value` becomes `var NAME = value`, which
    is Bicep pycep parses; values keep their pycep form (`literal` reads the plain ones).
    """
    text = path.read_text(encoding="utf-8")
    using = _USING.search(text)
    if using is None:
        raise ValueError(f"{path} has no using declaration")
    template = (path.parent / using["path"]).resolve()
    as_bicep = _PARAM.sub(lambda m: f"var {m['name']} =", _USING.sub("", text))
    tree = BicepParser().parse(text=as_bicep)
    return template, {name: entry["value"] for name, entry in tree.get("variables", {}).items()}
