"""Detectors that watch a run as a whole: handoff ping-pong and runaway runs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from opentelemetry.trace import Span

from otel_agents import semconv as sc
from otel_agents.core.ledger import RunLedger, current_ledger
from otel_agents.detectors.base import Detector

if TYPE_CHECKING:
    from otel_agents.core.agent import AgentRun
    from otel_agents.core.handoff import Handoff
    from otel_agents.core.inference import LLMCall
    from otel_agents.core.tool import ToolInvocation

_PING_PONG = sc.DetectorNameValues.HANDOFF_PING_PONG
_RUNAWAY = sc.DetectorNameValues.RUNAWAY_RUN


def bounces(chain: list[tuple[str, str]]) -> int:
    """How many handoffs at the end of `chain` bounce back and forth between the same two
    agents (A->B, B->A, A->B gives 3); 1 for a single handoff, 0 for none."""
    if not chain:
        return 0
    count = 1
    for earlier, later in zip(reversed(chain[:-1]), reversed(chain[1:]), strict=True):
        if earlier != (later[1], later[0]):
            break
        count += 1
    return count


class PingPongDetector(Detector):
    """Work bouncing between the same two agents: fires on the handoff where the bounces
    reach `ping_pong_handoffs`, once per pair of agents and run."""

    name = _PING_PONG

    def on_handoff_end(self, handoff: Handoff) -> None:
        # The handoff's own run: a callback-driven integration ends it outside the run's
        # context.
        ledger = handoff.ledger or current_ledger(handoff.parent_context)
        if ledger is None:
            return
        chain = ledger.handoffs.recent()
        count = bounces(chain)
        limit = self.settings.ping_pong_handoffs
        if count < limit:
            return
        pair = frozenset(chain[-1])
        if not self.first_time(ledger, (_PING_PONG, pair)):
            return
        first, second = chain[-1]
        self.reporter.report(
            handoff.span,
            ledger,
            _PING_PONG,
            f"work bounced {count} times between {first} and {second}",
            threshold=limit,
            observed=count,
            agent=handoff.source,
        )


class RunawayRunDetector(Detector):
    """More LLM calls, tool calls or seconds in one run than the configured bounds.

    Fires once per bound and run, on the span where the bound was passed (the run's root
    span for the duration, when it is only noticed as the run ends).
    """

    name = _RUNAWAY

    def on_llm_call_end(self, call: LLMCall) -> None:
        ledger: RunLedger | None = call.ledger
        if ledger is None:
            return
        limit = self.settings.runaway_llm_calls
        self._check_count(
            call.span, ledger, "LLM calls", limit, ledger.totals.llm_calls, call.agent_name
        )
        self._check_duration(call.span, ledger, call.agent_name)

    def on_tool_end(self, invocation: ToolInvocation) -> None:
        ledger: RunLedger | None = invocation.ledger
        if ledger is None:
            return
        self._check_count(
            invocation.span,
            ledger,
            "tool calls",
            self.settings.runaway_tool_calls,
            ledger.totals.tool_calls,
            invocation.agent_name,
        )
        self._check_duration(invocation.span, ledger, invocation.agent_name)

    def on_run_end(self, run: AgentRun) -> None:
        if run.ledger is not None:
            self._check_duration(run.span, run.ledger, run.name)

    def _check_count(
        self,
        span: Span,
        ledger: RunLedger,
        what: str,
        limit: int | None,
        observed: int,
        agent: str | None,
    ) -> None:
        if limit is None or observed <= limit or not self.first_time(ledger, (_RUNAWAY, what)):
            return
        self.reporter.report(
            span,
            ledger,
            _RUNAWAY,
            f"the run made more than {limit} {what} ({observed} so far)",
            threshold=limit,
            observed=observed,
            agent=agent,
        )

    def _check_duration(self, span: Span, ledger: RunLedger, agent: str | None) -> None:
        limit = self.settings.runaway_seconds
        if limit is None:
            return
        elapsed = time.monotonic() - ledger.started
        if elapsed <= limit or not self.first_time(ledger, (_RUNAWAY, "seconds")):
            return
        self.reporter.report(
            span,
            ledger,
            _RUNAWAY,
            f"the run has been going for {elapsed:.1f} s, longer than {limit:g} s",
            threshold=limit,
            observed=elapsed,
            agent=agent,
        )
