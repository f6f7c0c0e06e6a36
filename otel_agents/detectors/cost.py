"""Detectors that watch money: a run passing its budget, and a call far above its baseline."""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict, deque
from typing import TYPE_CHECKING

from opentelemetry.trace import Span

from otel_agents import semconv as sc
from otel_agents.core.ledger import RunLedger
from otel_agents.detectors.base import AnomalyReporter, Detector
from otel_agents.detectors.settings import DetectorSettings

if TYPE_CHECKING:
    from otel_agents.core.inference import LLMCall
    from otel_agents.core.tool import ToolInvocation

_BUDGET = sc.DetectorNameValues.BUDGET_EXCEEDED
_SPIKE = sc.DetectorNameValues.COST_SPIKE
_MAX_BASELINES = 1024
_TOLERANCE_USD = 1e-9  # tolerance for sums of float prices


class BudgetDetector(Detector):
    """The run spent more USD (LLM calls plus declared tool costs), or used more tokens,
    than its budget. Fires once per run and limit, on the span that crossed it."""

    name = _BUDGET

    def on_llm_call_end(self, call: LLMCall) -> None:
        self._check(call.span, call.ledger, call.agent_name)

    def on_tool_end(self, invocation: ToolInvocation) -> None:
        self._check(invocation.span, invocation.ledger, invocation.agent_name)

    def _check(self, span: Span, ledger: RunLedger | None, agent: str | None) -> None:
        if ledger is None:
            return
        budget_usd = self.settings.run_budget_usd
        if budget_usd is not None:
            spent = ledger.totals.spent_usd
            # A sum of float prices: $0.10 three times is 0.30000000000000004, not over $0.30.
            if spent > budget_usd + _TOLERANCE_USD and self.first_time(ledger, (_BUDGET, "usd")):
                self.reporter.report(
                    span,
                    ledger,
                    _BUDGET,
                    f"the run has spent ${spent:.4f}, over its budget of ${budget_usd:.4f}",
                    threshold=budget_usd,
                    observed=spent,
                    agent=agent,
                )
        budget_tokens = self.settings.run_budget_tokens
        if budget_tokens is not None:
            tokens = ledger.totals.input_tokens + ledger.totals.output_tokens
            if tokens > budget_tokens and self.first_time(ledger, (_BUDGET, "tokens")):
                self.reporter.report(
                    span,
                    ledger,
                    _BUDGET,
                    f"the run has used {tokens} tokens, over its budget of {budget_tokens}",
                    threshold=budget_tokens,
                    observed=tokens,
                    agent=agent,
                )


class CostSpikeDetector(Detector):
    """An LLM call costing far more than the recent calls of the same agent and model.

    The baseline is process-wide on purpose (one run has too few calls to learn from):
    the last `cost_spike_window` costs per (agent, model), compared by their median.
    """

    name = _SPIKE

    def __init__(self, settings: DetectorSettings, reporter: AnomalyReporter) -> None:
        super().__init__(settings, reporter)
        self._baselines: OrderedDict[tuple[str | None, str | None], _Window] = OrderedDict()
        self._lock = threading.Lock()

    def on_llm_call_end(self, call: LLMCall) -> None:
        cost: float | None = call.cost_usd
        if cost is None:
            return
        response = call.response
        model = (response.response_model if response is not None else None) or call.request.model
        median = self._observe((call.agent_name, model), cost)
        settings = self.settings
        if median is None or cost < settings.cost_spike_min_usd:
            return
        if cost > settings.cost_spike_factor * median:
            self.reporter.report(
                call.span,
                call.ledger,
                _SPIKE,
                f"this call cost ${cost:.4f}, {cost / median if median else float('inf'):.1f}x "
                f"the recent median of ${median:.4f} for {call.agent_name or 'no agent'} "
                f"on {model or 'unknown model'}",
                threshold=settings.cost_spike_factor * median,
                observed=cost,
                agent=call.agent_name,
            )

    def _observe(self, key: tuple[str | None, str | None], cost: float) -> float | None:
        """Add `cost` to the baseline; return the median before it (None while too few)."""
        settings = self.settings
        with self._lock:
            window = self._baselines.get(key)
            if window is None:
                window = self._baselines[key] = _Window(max(settings.cost_spike_window, 1))
                while len(self._baselines) > _MAX_BASELINES:
                    self._baselines.popitem(last=False)
            self._baselines.move_to_end(key)
            enough = len(window.order) >= max(settings.cost_spike_min_samples, 1)
            median = window.median() if enough else None
            window.add(cost)
        return median


class _Window:
    """The last `size` costs, also kept sorted, so the median is a lookup (this runs for
    every priced LLM call; `statistics.median` would sort the window every time)."""

    __slots__ = ("order", "sorted")

    def __init__(self, size: int) -> None:
        self.order: deque[float] = deque(maxlen=size)
        self.sorted: list[float] = []

    def add(self, cost: float) -> None:
        order = self.order
        if len(order) == order.maxlen:
            del self.sorted[bisect.bisect_left(self.sorted, order[0])]
        order.append(cost)
        bisect.insort(self.sorted, cost)

    def median(self) -> float:
        values = self.sorted
        middle = len(values) // 2
        if len(values) % 2:
            return values[middle]
        return (values[middle - 1] + values[middle]) / 2
