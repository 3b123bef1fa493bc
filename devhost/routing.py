"""Functions (ASP.NET Core) route templates: `musicals/{id}`, `{id:int}`, `{page?}`, `{*rest}`.

Routes are tried in ASP.NET's precedence order (literal segments before constrained parameters,
before plain parameters, before optional ones, before catch-alls), so `musicals/search` wins
over `musicals/{id}` whatever order the functions were declared in. Literals ignore case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

_PARAMETER = re.compile(
    r"\{(?P<star>\*{1,2})?(?P<name>[^{}:?=*]+)(?::(?P<constraint>[^{}?=]+))?(?P<optional>\?)?(?:=[^{}]*)?\}"
)
_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "bool": r"(?i:true|false)",
    "guid": r"\{?[0-9A-Fa-f]{8}-?(?:[0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}\}?",
    "alpha": r"[A-Za-z]+",
    "double": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
}
_LITERAL, _CONSTRAINED, _PLAIN, _OPTIONAL, _CATCH_ALL = range(5)


@dataclass(frozen=True)
class RouteTemplate:
    """A compiled route template; `match` returns the route values of a path, or None."""

    template: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]
    precedence: tuple[int, ...]

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path)
        if found is None:
            return None
        return {
            name: value
            for name, value in zip(self.names, found.groups(), strict=True)
            if value is not None
        }


def compile_route(template: str) -> RouteTemplate:
    names: list[str] = []
    precedence: list[int] = []
    regex = ""
    for index, segment in enumerate(template.strip("/").split("/")):
        separator = "/" if index else ""
        parameters = list(_PARAMETER.finditer(segment))
        whole = len(parameters) == 1 and parameters[0].group(0) == segment
        if whole and (parameters[0]["optional"] or parameters[0]["star"]):
            star = bool(parameters[0]["star"])
            group = f"(?P<p{len(names)}>{'.*' if star else _constraint(parameters[0])})"
            names.append(parameters[0]["name"])
            regex += f"(?:{separator}{group})?"
            precedence.append(_CATCH_ALL if star else _OPTIONAL)
            continue
        regex += separator
        cursor = 0
        for parameter in parameters:
            regex += _literal(segment[cursor : parameter.start()])
            regex += f"(?P<p{len(names)}>{_constraint(parameter)})"
            names.append(parameter["name"])
            cursor = parameter.end()
        regex += _literal(segment[cursor:])
        if not parameters:
            precedence.append(_LITERAL)
        else:
            constrained = any(parameter["constraint"] for parameter in parameters)
            precedence.append(_CONSTRAINED if constrained or not whole else _PLAIN)
    return RouteTemplate(template, re.compile(regex), tuple(names), tuple(precedence))


def _literal(text: str) -> str:
    return f"(?i:{re.escape(text)})" if text else ""


def _constraint(parameter: re.Match[str]) -> str:
    constraint = parameter["constraint"]
    if not constraint:
        return "[^/]+"
    regex = re.fullmatch(r"regex\((?P<expr>.*)\)", constraint)
    if regex:
        return f"(?:{regex['expr']})"
    return _CONSTRAINTS.get(constraint.split("(")[0].lower(), "[^/]+")


@dataclass(frozen=True)
class Route(Generic[T]):
    template: RouteTemplate
    methods: frozenset[str] | None
    target: T


@dataclass(frozen=True)
class RouteMatch(Generic[T]):
    target: T
    route_params: dict[str, str]


class MethodNotAllowed(Exception):
    def __init__(self, allowed: Iterable[str]) -> None:
        super().__init__("method not allowed")
        self.allowed = sorted(allowed)


class Router(Generic[T]):
    """Maps (method, path) to a target under a route prefix (`api` unless host.json says)."""

    def __init__(self, prefix: str, routes: Iterable[tuple[str, Iterable[str] | None, T]]) -> None:
        self._prefix = f"/{prefix}".rstrip("/").lower() if prefix else ""
        compiled = [
            Route(
                compile_route(template),
                frozenset(m.upper() for m in methods) if methods else None,
                target,
            )
            for template, methods, target in routes
        ]
        self._routes = sorted(compiled, key=lambda r: (r.template.precedence, r.template.template))

    def match(self, method: str, path: str) -> RouteMatch[T] | None:
        """The route serving this request; None when no route has this path.

        Raises MethodNotAllowed when routes have this path but none accepts the method.
        """
        relative = self._relative(path)
        if relative is None:
            return None
        allowed: set[str] = set()
        for route in self._routes:
            values = route.template.match(relative)
            if values is None:
                continue
            if route.methods is None or method in route.methods:
                return RouteMatch(route.target, values)
            allowed |= route.methods
        if allowed:
            raise MethodNotAllowed(allowed)
        return None

    def _relative(self, path: str) -> str | None:
        prefix = self._prefix
        if prefix:
            head = path[: len(prefix)]
            if head.lower() != prefix or (len(path) > len(prefix) and path[len(prefix)] != "/"):
                return None
            path = path[len(prefix) :]
        return path.strip("/")
