"""In-process detectors for the failures that make no noise.

Each detector is an `Observer` that reads the run ledger as tool calls, LLM calls, handoffs
and runs finish, and reports what it finds on the span where it found it (an
`otel_agents.anomaly` event and attribute), in the run's anomaly total, and on the
`otel_agents.anomalies` metric. `instrument()` installs them all by default; thresholds are
in `DetectorSettings` (see docs/policy.md for each one and its environment variable).
"""

from __future__ import annotations

from opentelemetry.metrics import Meter

from otel_agents import semconv as sc
from otel_agents.detectors.base import AnomalyReporter, Detector, DetectorSet
from otel_agents.detectors.cost import BudgetDetector, CostSpikeDetector
from otel_agents.detectors.runs import PingPongDetector, RunawayRunDetector, bounces
from otel_agents.detectors.settings import ALL_DETECTORS, DetectorSettings
from otel_agents.detectors.tools import (
    RetryLoopDetector,
    SilentFailureDetector,
    error_shape,
    is_empty,
)
from otel_agents.runtime import Observer

_DETECTORS: dict[str, type[Detector]] = {
    sc.DetectorNameValues.RETRY_LOOP: RetryLoopDetector,
    sc.DetectorNameValues.SILENT_TOOL_FAILURE: SilentFailureDetector,
    sc.DetectorNameValues.COST_SPIKE: CostSpikeDetector,
    sc.DetectorNameValues.BUDGET_EXCEEDED: BudgetDetector,
    sc.DetectorNameValues.HANDOFF_PING_PONG: PingPongDetector,
    sc.DetectorNameValues.RUNAWAY_RUN: RunawayRunDetector,
}


def build_detectors(settings: DetectorSettings, meter: Meter) -> list[Observer]:
    """The observers to install: the enabled detectors, sharing one anomaly reporter (and so
    one metric), bundled in one `DetectorSet`; none when no detector is enabled."""
    reporter = AnomalyReporter(meter)
    detectors = [
        detector(settings, reporter) for name, detector in _DETECTORS.items() if settings.on(name)
    ]
    return [DetectorSet(detectors)] if detectors else []


__all__ = [
    "ALL_DETECTORS",
    "AnomalyReporter",
    "BudgetDetector",
    "CostSpikeDetector",
    "Detector",
    "DetectorSet",
    "DetectorSettings",
    "PingPongDetector",
    "RetryLoopDetector",
    "RunawayRunDetector",
    "SilentFailureDetector",
    "bounces",
    "build_detectors",
    "error_shape",
    "is_empty",
]
