"""Run a function when a module is imported (at once, if it already is).

What `wrapt.register_post_import_hook` does, without importing wrapt at `instrument()`:
wrapt brings asyncio, ssl and `importlib.metadata` (about 130M instructions, a third of
what `instrument()` cost), and an application that never imports a client should not pay
for the means of patching one. The adapters still wrap with wrapt, once their client is
imported (and with it, asyncio anyway).

A finder first on `sys.meta_path` answers only for the modules that hooks wait for: it asks
the finders after it for the module's spec and wraps the spec's loader, so that the hooks
run when the module has been executed. An import that fails leaves its hooks waiting for
the next attempt. A hook runs once; a failing hook is reported, never raised into the
import.
"""

from __future__ import annotations

import importlib.machinery
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from otel_agents.runtime import report_internal_error

Hook = Callable[[ModuleType], None]

_lock = threading.Lock()
_waiting: dict[str, list[Hook]] = {}


def when_imported(name: str, hook: Hook) -> None:
    """Call `hook(module)` once `name` is imported; at once if it already is."""
    with _lock:
        _waiting.setdefault(name, []).append(hook)
        _install_finder()
        module = sys.modules.get(name)
    if module is not None:
        _run_hooks(name, module)


def _run_hooks(name: str, module: ModuleType) -> None:
    with _lock:
        hooks = _waiting.pop(name, [])
    for hook in hooks:
        try:
            hook(module)
        except Exception as exc:
            report_internal_error(f"import hook for {name}", exc)


class _Finder:
    """A meta path finder (by its `find_spec`: subclassing `importlib.abc.MetaPathFinder`
    would import `importlib.abc`, which brings `importlib.resources`, `zipfile` and
    `tempfile`: about 7 ms at start-up)."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _waiting:  # a dict lookup: every other import passes straight on
            return None
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec: importlib.machinery.ModuleSpec | None = find(fullname, path, target)
            if spec is None:
                continue
            loader = spec.loader
            if loader is not None and hasattr(loader, "exec_module"):
                spec.loader = _HookedLoader(loader)  # type: ignore[assignment]  # a Loader by its methods
            return spec
        return None


class _HookedLoader:
    """The module's own loader, and then the hooks. Everything else is the loader's."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self.loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        _run_hooks(module.__name__, module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_resource_reader, is_package...
        return getattr(self.loader, name)


_finder = _Finder()


def _install_finder() -> None:
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


__all__ = ["when_imported"]
