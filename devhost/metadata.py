"""What the `azure-functions` decorators recorded about each function of an app.

`FunctionApp.get_functions()` may run only once per app object (a second call raises "does not
have a unique function name"), so the result is cached per app.
"""

from __future__ import annotations

import inspect
import json
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func

HTTP_TRIGGER = "httpTrigger"
SERVICE_BUS_TRIGGER = "serviceBusTrigger"
COSMOS_TRIGGER = "cosmosDBTrigger"
TIMER_TRIGGER = "timerTrigger"
BACKGROUND_TRIGGERS = frozenset({SERVICE_BUS_TRIGGER, COSMOS_TRIGGER, TIMER_TRIGGER})
"""The trigger kinds devhost drives besides HTTP."""

Binding = dict[str, Any]

_SPECS: weakref.WeakKeyDictionary[Any, list[FunctionSpec]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class FunctionSpec:
    """One function as the host sees it: its trigger, other bindings and settings as JSON dicts
    (the shape of a `function.json`, e.g. `{"type": "httpTrigger", "route": ..., ...}`)."""

    name: str
    function: Callable[..., Any]
    trigger: Binding
    bindings: tuple[Binding, ...] = ()
    retry: Binding | None = None
    is_async: bool = False
    parameters: tuple[str, ...] = field(default=())

    @property
    def trigger_type(self) -> str:
        return str(self.trigger["type"])

    @property
    def trigger_arg(self) -> str:
        """The parameter the trigger's payload is passed as."""
        return str(self.trigger["name"])


def functions_of(app: func.FunctionRegister) -> list[FunctionSpec]:
    """Every function registered on `app` (blueprints included), read once and cached."""
    specs = _SPECS.get(app)
    if specs is None:
        specs = [_spec_of(function) for function in app.get_functions()]
        _SPECS[app] = specs
    return specs


def _spec_of(function: Any) -> FunctionSpec:
    description = json.loads(function.get_function_json())
    bindings = description["bindings"]
    trigger = next(b for b in bindings if b["type"].lower().endswith("trigger"))
    others = tuple(b for b in bindings if b is not trigger)
    retry = function.get_settings_dict("retry_policy")
    if retry is not None:
        retry = {k: v for k, v in retry.items() if k != "setting_name" and v is not None}
    user_function = function.get_user_function()
    return FunctionSpec(
        name=function.get_function_name(),
        function=user_function,
        trigger=trigger,
        bindings=others,
        retry=retry,
        is_async=inspect.iscoroutinefunction(user_function),
        parameters=tuple(inspect.signature(user_function).parameters),
    )
