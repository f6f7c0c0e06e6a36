"""Client and framework adapters, patched lazily and only when the client is installed.

Each adapter module (`openai.py`, `anthropic.py`, ...) exposes `patch(module)` and
`unpatch()`. `instrument()` registers a post-import hook per installed client, so a client
is patched when the application imports it (or at once if it already has), and a client
the application never imports costs nothing. An adapter can be switched off with the
standard `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS` variable, by its name (`otel_agents_openai`).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol, cast

from otel_agents.import_hooks import when_imported
from otel_agents.runtime import report_internal_error


class AdapterModule(Protocol):
    def patch(self, client_module: ModuleType) -> None: ...

    def unpatch(self) -> None: ...


@dataclass(frozen=True)
class Adapter:
    name: str  # the name users disable it by: otel_agents_<name>
    client_module: str  # importing this module triggers the patch
    adapter_module: str  # our module with patch()/unpatch()


ADAPTERS: tuple[Adapter, ...] = (
    Adapter("openai", "openai", "otel_agents.adapters.openai"),
    Adapter("anthropic", "anthropic", "otel_agents.adapters.anthropic"),
    Adapter("google_genai", "google.genai", "otel_agents.adapters.google_genai"),
    Adapter("bedrock", "botocore.client", "otel_agents.adapters.bedrock"),
    Adapter("openai_agents", "agents", "otel_agents.integrations.openai_agents"),
    Adapter("mcp", "mcp", "otel_agents.adapters.mcp"),
    Adapter("langgraph", "langgraph.pregel", "otel_agents.integrations.langgraph"),
)

_lock = threading.Lock()
_hooked: set[str] = set()  # post-import hooks cannot be removed; they check `_active`
_active: set[str] = set()
_patched: set[str] = set()


def disabled_names(environ: dict[str, str] | None = None) -> set[str]:
    env = os.environ if environ is None else environ
    raw = env.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def instrument_adapters(names: set[str] | None = None) -> list[str]:
    """Arrange for every installed, enabled adapter to patch its client. Idempotent."""
    disabled = disabled_names()
    enabled: list[str] = []
    hooks_to_register: list[Adapter] = []
    reinstrument: list[Adapter] = []
    with _lock:
        for adapter in ADAPTERS:
            if names is not None and adapter.name not in names:
                continue
            if f"otel_agents_{adapter.name}" in disabled or "otel_agents" in disabled:
                continue
            if not _installed(adapter.client_module):
                continue
            _active.add(adapter.name)
            enabled.append(adapter.name)
            if adapter.name not in _hooked:
                _hooked.add(adapter.name)
                hooks_to_register.append(adapter)
            elif adapter.client_module in sys.modules:
                reinstrument.append(adapter)  # its hook fired long ago: patch again now
    # Outside the lock: a hook for an already imported module runs at once and takes it.
    for adapter in hooks_to_register:
        when_imported(adapter.client_module, _patcher(adapter))
    for adapter in reinstrument:
        _patcher(adapter)(sys.modules[adapter.client_module])
    return enabled


def _installed(module: str) -> bool:
    """Whether `module` can be imported, found without importing anything: for a dotted
    name, `find_spec` would import its parent packages (botocore's `__init__` is costly),
    so the package is found first and the rest looked for in its directories."""
    top, _, rest = module.partition(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None or not rest:
        return spec is not None
    if top in sys.modules:  # already imported: finding the submodule costs nothing more
        try:
            return importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            return False
    *packages, name = rest.split(".")
    for location in spec.submodule_search_locations or ():
        base = Path(location, *packages)
        if (base / name).is_dir() or any(
            (base / f"{name}{suffix}").is_file() for suffix in importlib.machinery.all_suffixes()
        ):
            return True
    return False


def uninstrument_adapters() -> None:
    with _lock:
        for adapter in ADAPTERS:
            _active.discard(adapter.name)
            if adapter.name in _patched:
                _patched.discard(adapter.name)
                try:
                    _load(adapter).unpatch()
                except Exception as exc:
                    report_internal_error(f"unpatch {adapter.name}", exc)


def _patcher(adapter: Adapter) -> Callable[[ModuleType], None]:
    def on_import(client_module: ModuleType) -> None:
        with _lock:
            if adapter.name not in _active or adapter.name in _patched:
                return
            try:
                _load(adapter).patch(client_module)
                _patched.add(adapter.name)
            except Exception as exc:
                report_internal_error(f"patch {adapter.name}", exc)

    return on_import


def _load(adapter: Adapter) -> AdapterModule:
    return cast(AdapterModule, importlib.import_module(adapter.adapter_module))
