"""The `opentelemetry_instrumentor` entry point, for zero-code use:

    opentelemetry-instrument python app.py

It does what `otel_agents.instrument()` does, with the providers `opentelemetry-instrument`
hands over (or none, in which case we set the SDK up from the `OTEL_*` variables).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]


class AgentsInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Entry point `otel_agents`: instruments every installed client otel-agents supports."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        from otel_agents.lifecycle import instrument

        instrument(
            tracer_provider=kwargs.get("tracer_provider"),
            meter_provider=kwargs.get("meter_provider"),
        )

    def _uninstrument(self, **kwargs: Any) -> None:
        from otel_agents.lifecycle import uninstrument

        uninstrument()
