"""Load the layer a command line names: ``path/to/file.py:NAME`` or ``package.module:NAME``."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from gradcheck.errors import invalid
from gradcheck.harness.layer import as_layer


def _module_from_path(target: str, path: Path) -> Any:
    if not path.is_file():
        raise invalid("target", target, f"no such file: {path}")
    # A layer file may import its neighbours (examples/mistakes.py imports examples.naive_conv):
    # make its folder and the folder above importable, as pytest's rootdir import does.
    for folder in (path.resolve().parent.parent, path.resolve().parent, Path.cwd()):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    name = f"gradcheck_target_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise invalid("target", target, f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_target(target: str) -> Any:
    """Import the module, fetch NAME, and turn it into a layer.

    NAME may be a layer object, a layer class (instantiated without arguments) or a
    zero-argument factory returning a layer.  Problems with the target itself raise
    InvalidArgument; an exception raised while importing the user's module propagates with
    its own traceback (the CLI reports it as a usage error).
    """
    if ":" not in target:
        raise invalid("target", target, "expected path/to/file.py:NAME or package.module:NAME")
    where, name = target.rsplit(":", 1)
    if not name.isidentifier():
        raise invalid("target", target, f"NAME={name!r} is not a Python identifier")
    if where.endswith(".py") or "/" in where or "\\" in where:
        module = _module_from_path(target, Path(where))
    else:
        if str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as error:
            raise invalid("target", target, f"cannot import module {where!r}: {error}") from None
    if not hasattr(module, name):
        public = sorted(n for n in vars(module) if not n.startswith("_"))[:12]
        raise invalid("target", target, f"{where} has no attribute {name!r} (it has: "
                      f"{', '.join(public)})")
    obj = getattr(module, name)
    is_layer = hasattr(obj, "forward") and hasattr(obj, "backward")
    if isinstance(obj, type) or (not is_layer and callable(obj)):
        if not _takes_no_arguments(obj):
            raise invalid("target", target, f"{name} needs arguments: expected a layer object, "
                          "a layer class or a zero-argument factory")
        obj = obj()
    return as_layer(obj, name="target")


def _takes_no_arguments(fn: Any) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in signature.parameters.values())
