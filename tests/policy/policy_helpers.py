"""Helpers for the policy tests (a uniquely named module: tests/ has several conftests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import otel_agents

ROOT = Path(__file__).resolve().parents[2]
VENDOR_POLICY = ROOT / "examples" / "policies" / "vendor-onboarding.yaml"


def reinstrument(telemetry: Any, **options: Any) -> None:
    """Instrument again against the `telemetry` fixture's in-memory providers, with
    policy or detector options (the fixture uninstruments at teardown)."""
    options.setdefault("detectors", False)
    otel_agents.instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        configure_sdk=False,
        **options,
    )


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def spans_named(telemetry: Any, name: str) -> list[Any]:
    return [s for s in telemetry.spans() if s.name == name]


def point_values(telemetry: Any, metric: str) -> list[tuple[dict[str, Any], Any]]:
    """(attributes, value) of each data point of a metric."""
    return [
        (dict(p.attributes), getattr(p, "value", None) if hasattr(p, "value") else p.count)
        for p in telemetry.metric_points(metric)
    ]
