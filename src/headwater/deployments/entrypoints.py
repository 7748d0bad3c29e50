"""Entrypoints: where a deployment's flow lives, and loading it back in a worker's process.

An entrypoint is `path/to/file.py:function` (relative to the deployment's
working directory, or absolute) or `package.module:function` (importable).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.exceptions import ConfigurationError

if TYPE_CHECKING:
    from headwater.flows import Flow


def entrypoint_of(flow: Flow[Any, Any], working_directory: Path | None = None) -> str:
    """The entrypoint of `flow`'s function: `file.py:name` relative to `working_directory`
    (default: the current directory) when the file is under it, else the absolute path.

    Raises:
        ConfigurationError: the function is not defined at the top level of a file.
    """
    fn = flow.fn
    qualname = getattr(fn, "__qualname__", "")
    if "<locals>" in qualname or "." in qualname:
        raise ConfigurationError(
            f"Flow {flow.name!r} is defined inside {qualname.rsplit('.', 1)[0]!r}; a deployment "
            "needs a flow defined at the top level of a file, so a worker can import it."
        )
    module = sys.modules.get(fn.__module__)
    file = getattr(module, "__file__", None)
    if not file:
        raise ConfigurationError(
            f"Flow {flow.name!r} is not defined in a file (module {fn.__module__!r}); a "
            "deployment needs one, so a worker can import it."
        )
    path = Path(file).resolve()
    base = (working_directory or Path.cwd()).resolve()
    try:
        shown = str(path.relative_to(base))
    except ValueError:
        shown = str(path)
    return f"{shown}:{fn.__name__}"


def load_flow_from_entrypoint(
    entrypoint: str, working_directory: Path | None = None
) -> Flow[Any, Any]:
    """Import the flow an entrypoint names; a file's directory goes on `sys.path` first,
    so that its sibling modules import.

    Raises:
        ConfigurationError: the entrypoint is malformed, the file or object is missing,
            or the object is not a flow.
    """
    from headwater.flows import Flow

    location, separator, name = entrypoint.rpartition(":")
    if not separator or not location or not name.isidentifier():
        raise ConfigurationError(
            f"Invalid entrypoint {entrypoint!r}: expected 'path/to/file.py:function' or "
            "'package.module:function'."
        )
    if location.endswith(".py") or "/" in location or "\\" in location:
        path = Path(location)
        if not path.is_absolute():
            path = (working_directory or Path.cwd()) / path
        if not path.is_file():
            raise ConfigurationError(
                f"Entrypoint {entrypoint!r}: no file {str(path)!r}; deployments name files "
                "relative to their working directory (`path`)."
            )
        module = _import_file(path)
    else:
        try:
            module = importlib.import_module(location)
        except ImportError as exc:
            raise ConfigurationError(f"Entrypoint {entrypoint!r}: cannot import it: {exc}") from exc
    found = getattr(module, name, None)
    if found is None:
        raise ConfigurationError(f"Entrypoint {entrypoint!r}: {location} has no {name!r}.")
    if not isinstance(found, Flow):
        raise ConfigurationError(
            f"Entrypoint {entrypoint!r} is a {type(found).__name__}, not a flow; decorate it "
            "with @flow."
        )
    return found


def _import_file(path: Path) -> Any:
    """Import a file as a module named after it (not `__main__`: its `if __name__ ==
    "__main__":` block must not run)."""
    path = path.resolve()
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    name = path.stem if path.stem.isidentifier() else "headwater_entrypoint"
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) == str(path):
        return existing
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"Cannot import {str(path)!r} as a Python file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
