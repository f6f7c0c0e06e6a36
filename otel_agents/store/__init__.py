"""The embedded local store: spans in one SQLite file, no server needed.

When no OTLP endpoint is configured, `instrument()` sends spans here (see `sdk_setup.py`);
the `otel-agents` command reads them back. Settings (see `settings.py`):
`OTEL_AGENTS_STORE` (`auto` | `always` | `off`), `OTEL_AGENTS_STORE_PATH`,
`OTEL_AGENTS_STORE_MAX_AGE_DAYS`, `OTEL_AGENTS_STORE_MAX_MB`.

Writing: `StoreSpanProcessor` (a bounded batch processor around `StoreExporter`).
Reading: `Store.open(path)`.

Names load on first use, so the command line tool does not pay for the SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otel_agents.store.exporter import StoreExporter as StoreExporter
    from otel_agents.store.exporter import StoreSpanProcessor as StoreSpanProcessor
    from otel_agents.store.reader import AlertFilter as AlertFilter
    from otel_agents.store.reader import AmbiguousRun as AmbiguousRun
    from otel_agents.store.reader import AuditFilter as AuditFilter
    from otel_agents.store.reader import RunFilter as RunFilter
    from otel_agents.store.reader import RunNotFound as RunNotFound
    from otel_agents.store.reader import Store as Store
    from otel_agents.store.reader import StoreDamaged as StoreDamaged
    from otel_agents.store.reader import StoreError as StoreError
    from otel_agents.store.reader import StoreNotFound as StoreNotFound
    from otel_agents.store.settings import StoreMode as StoreMode
    from otel_agents.store.settings import StoreSettings as StoreSettings
    from otel_agents.store.settings import default_store_path as default_store_path

_EXPORTS = {
    "StoreExporter": "exporter",
    "StoreSpanProcessor": "exporter",
    "AlertFilter": "reader",
    "AmbiguousRun": "reader",
    "AuditFilter": "reader",
    "RunFilter": "reader",
    "RunNotFound": "reader",
    "Store": "reader",
    "StoreDamaged": "reader",
    "StoreError": "reader",
    "StoreNotFound": "reader",
    "StoreMode": "settings",
    "StoreSettings": "settings",
    "default_store_path": "settings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'otel_agents.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"otel_agents.store.{module}"), name)
    globals()[name] = value
    return value
