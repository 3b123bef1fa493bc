"""Finds the FunctionApp to host: `--app` names a module (`function_app`, `pkg.mod`) or a file
(`path/to/app.py`), optionally followed by `:attribute`; without an attribute, the module's
`app`, else its only FunctionApp."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import azure.functions as func

DEFAULT_APP = "function_app"


@dataclass(frozen=True)
class LoadedApp:
    app: func.FunctionApp
    directory: Path
    """Where the app's file lives: host.json is read from there."""


def load_app(reference: str = DEFAULT_APP) -> LoadedApp:
    target, _, attribute = reference.partition(":")
    module = _import(target)
    directory = Path(module.__file__ or ".").resolve().parent
    return LoadedApp(app=_app_of(module, attribute), directory=directory)


def _import(target: str) -> ModuleType:
    if target.endswith(".py") or "/" in target:
        path = Path(target).resolve()
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        return module
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    return importlib.import_module(target)


def _app_of(module: ModuleType, attribute: str) -> func.FunctionApp:
    if attribute:
        return getattr(module, attribute)
    if isinstance(getattr(module, "app", None), func.FunctionApp):
        return module.app
    apps = [value for value in vars(module).values() if isinstance(value, func.FunctionApp)]
    if len(apps) != 1:
        raise LookupError(
            f"{module.__name__} defines {len(apps)} FunctionApps; name one with :attr"
        )
    return apps[0]
