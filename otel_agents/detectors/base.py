"""What every detector shares: reporting an anomaly, and firing once per run.

A finding shows up in four places: an `otel_agents.anomaly` event on the span where it was
found (detector, message, threshold, observed value), that detector's name in the span's
`otel_agents.anomaly` attribute, the run's anomaly total (`otel_agents.run.anomalies` on
the root span), and the `otel_agents.anomalies` metric that alerts are built on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import Meter
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from otel_agents import semconv as sc
from otel_agents.core.ledger import RunLedger
from otel_agents.detectors.settings import DetectorSettings
from otel_agents.runtime import Observer, report_internal_error

if TYPE_CHECKING:
    from otel_agents.core.agent import AgentRun
    from otel_agents.core.handoff import Handoff
    from otel_agents.core.inference import LLMCall
    from otel_agents.core.tool import ToolInvocation

_FIRED_KEY = "detectors:fired"


class AnomalyReporter:
    """Records findings on spans, the run ledger and the anomalies metric."""

    def __init__(self, meter: Meter) -> None:
        self._counter = meter.create_counter(
            sc.METRIC_ANOMALIES,
            sc.METRIC_UNITS.get(sc.METRIC_ANOMALIES, ""),
            "Anomalies reported by the detectors.",
        )

    def report(
        self,
        span: Span,
        ledger: RunLedger | None,
        detector: str,
        message: str,
        *,
        threshold: float | None = None,
        observed: float | None = None,
        agent: str | None = None,
    ) -> None:
        event: dict[str, AttributeValue] = {
            sc.DETECTOR_NAME: detector,
            sc.DETECTOR_MESSAGE: message,
        }
        if threshold is not None:
            event[sc.DETECTOR_THRESHOLD] = float(threshold)
        if observed is not None:
            event[sc.DETECTOR_OBSERVED] = float(observed)
        if ledger is not None:
            event[sc.RUN_ID] = ledger.run_id
        if span.is_recording():
            span.add_event(sc.EVENT_ANOMALY, event)
            kinds = list(_attribute(span, sc.ANOMALY) or ())
            if detector not in kinds:
                span.set_attribute(sc.ANOMALY, [*kinds, detector])
        if ledger is not None:
            ledger.totals.add_anomalies()
        metric: dict[str, AttributeValue] = {sc.DETECTOR_NAME: detector}
        if agent:
            metric[sc.GEN_AI_AGENT_NAME] = agent
        self._counter.add(1, metric)


def _attribute(span: Span, key: str) -> Any:
    attributes = getattr(span, "attributes", None)
    return attributes.get(key) if isinstance(attributes, Mapping) else None


class _Fired:
    """The findings a run has already reported, so each fires once per run."""

    def __init__(self) -> None:
        self._keys: set[Hashable] = set()
        self._lock = threading.Lock()

    def first(self, key: Hashable) -> bool:
        with self._lock:
            if key in self._keys:
                return False
            self._keys.add(key)
            return True


class Detector(Observer):
    """Base of the detectors: settings, the reporter, and once-per-run bookkeeping."""

    name: str = ""

    def __init__(self, settings: DetectorSettings, reporter: AnomalyReporter) -> None:
        self.settings = settings
        self.reporter = reporter

    @staticmethod
    def first_time(ledger: RunLedger, key: Hashable) -> bool:
        """True the first time `key` is seen in this run (thread-safe)."""
        return ledger.observer_state(_FIRED_KEY, _Fired).first(key)


_EVENTS = ("on_tool_start", "on_tool_end", "on_llm_call_end", "on_handoff_end", "on_run_end")
Handler = Callable[[Any], None]


class DetectorSet(Observer):
    """The enabled detectors as one observer.

    Each event goes only to the detectors that watch it. Most detectors watch one or two
    events, so installing them one by one would have every tool call dispatch a dozen
    hooks that do nothing. A detector's failure is logged and stops no other detector.
    """

    def __init__(self, detectors: list[Detector]) -> None:
        self.detectors = tuple(detectors)
        self._handlers: dict[str, tuple[tuple[str, Handler], ...]] = {
            event: tuple(
                (type(d).__name__, getattr(d, event)) for d in self.detectors if _watches(d, event)
            )
            for event in _EVENTS
        }

    def on_tool_start(self, invocation: ToolInvocation) -> None:
        self._dispatch("on_tool_start", invocation)

    def on_tool_end(self, invocation: ToolInvocation) -> None:
        self._dispatch("on_tool_end", invocation)

    def on_llm_call_end(self, call: LLMCall) -> None:
        self._dispatch("on_llm_call_end", call)

    def on_handoff_end(self, handoff: Handoff) -> None:
        self._dispatch("on_handoff_end", handoff)

    def on_run_end(self, run: AgentRun) -> None:
        self._dispatch("on_run_end", run)

    def _dispatch(self, event: str, subject: Any) -> None:
        for name, handler in self._handlers[event]:
            try:
                handler(subject)
            except Exception as exc:
                report_internal_error(f"detector {name}.{event}", exc)


def _watches(detector: Detector, event: str) -> bool:
    return getattr(type(detector), event) is not getattr(Observer, event)
