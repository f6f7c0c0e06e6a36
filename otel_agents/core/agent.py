"""`otel_agents.agent(...)`: an agent run as an `invoke_agent {name}` span.

The outermost agent span of a run owns the run ledger; when it ends it carries the run
totals (cost, tokens, LLM calls, tool calls, handoffs, retries, anomalies), so a backend can
sample and alert on whole runs. Nested agents nest, and share the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from otel_agents import semconv as sc
from otel_agents.core.common import (
    AgentFrame,
    context_with_agent,
    error_type,
    record_error,
    wrap_callable,
)
from otel_agents.core.invocation import Invocation
from otel_agents.core.ledger import RunLedger, context_with_ledger, current_run_ledger
from otel_agents.runtime import get_runtime, report_internal_error

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class AgentSpec:
    name: str
    agent_id: str | None = None
    description: str | None = None
    version: str | None = None
    conversation_id: str | None = None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)

    def span_attributes(self, run_id: str) -> dict[str, AttributeValue]:
        attributes: dict[str, AttributeValue] = {
            sc.GEN_AI_OPERATION_NAME: sc.GenAiOperationNameValues.INVOKE_AGENT,
            sc.GEN_AI_AGENT_NAME: self.name,
            sc.RUN_ID: run_id,
        }
        # The conventions' in-process agent span has no `gen_ai.agent.id` or
        # `gen_ai.agent.version` (they describe hosted agents): ours carry them.
        for key, value in (
            (sc.AGENT_ID, self.agent_id),
            (sc.GEN_AI_AGENT_DESCRIPTION, self.description),
            (sc.AGENT_VERSION, self.version),
            (sc.GEN_AI_CONVERSATION_ID, self.conversation_id),
        ):
            if value is not None:
                attributes[key] = value
        attributes.update(self.attributes)
        return attributes


class AgentRun(Invocation):
    """An agent invocation (`invoke_agent`), and the handle `with otel_agents.agent(...) as
    run` gives: the span and the run ledger. The outermost one of a run owns the ledger."""

    ledger: RunLedger | None = None
    is_root = False
    _token: object | None = None

    def __init__(self, spec: AgentSpec, ledger: RunLedger | None, is_root: bool):
        super().__init__()
        self.spec = spec
        self.ledger = ledger
        self.is_root = is_root
        self._token: object | None = None
        # The run's counts when this invocation started: its own share is the difference.
        self._counts_at_start = _counts(ledger)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def run_id(self) -> str | None:
        return self.ledger.run_id if self.ledger is not None else None

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self.span.set_attribute(key, value)

    @classmethod
    def unrecorded(cls, spec: AgentSpec | None) -> AgentRun:
        """A handle that records nothing, for when starting the run failed. Built without
        `__init__`, which may be what failed."""
        run = cls.__new__(cls)
        run.spec = spec if spec is not None else AgentSpec.__new__(AgentSpec)
        run._finished = True
        return run

    @classmethod
    def start(
        cls,
        spec: AgentSpec,
        *,
        parent: Invocation | otel_context.Context | None = None,
        make_current: bool = True,
        run_id: str | None = None,
    ) -> AgentRun:
        """Open the agent span in `parent` (default: the current context). The first
        agent of a run (none above it in `parent`) starts the run and its ledger, under
        `run_id` when given (a resumed run keeps its id). `make_current=False` leaves the
        context alone: children then start with `parent=run`, and `finish` may come from
        another context or thread."""
        try:
            runtime = get_runtime()
            ctx = Invocation.resolve_parent(parent)
            ledger = current_run_ledger(ctx)
            is_root = ledger is None
            if ledger is None:
                ledger = RunLedger(root_agent=spec.name)
                if run_id:
                    ledger.run_id = run_id
            run = cls(spec, ledger, is_root)
            run.parent_context = ctx
            run.start_span(
                runtime,
                f"invoke_agent {spec.name}",
                SpanKind.INTERNAL,
                spec.span_attributes(ledger.run_id),
            )
            if make_current:
                run._token = run.make_current()
            return run
        except Exception as exc:
            report_internal_error("agent start", exc)
            return cls.unrecorded(spec)

    def _add_to_context(self, ctx: otel_context.Context) -> otel_context.Context:
        ctx = context_with_agent(AgentFrame(self.spec.name, self.span), ctx)
        if self.is_root and self.ledger is not None:
            ctx = context_with_ledger(self.ledger, ctx)
        return ctx

    def finish(self, exc: BaseException | None = None, result: Any = None) -> None:
        try:
            self.complete(exc)
        finally:
            self.stop_current(self._token)
            self._token = None

    def _record_end(self, exc: BaseException | None) -> None:
        ledger = self.ledger
        if ledger is None:
            return
        runtime = get_runtime()
        if exc is not None:
            record_error(self.span, exc, runtime)
        metric_attributes: dict[str, AttributeValue] = {sc.GEN_AI_AGENT_NAME: self.name}
        if exc is not None:
            metric_attributes[sc.ERROR_TYPE] = error_type(exc)
        if self.is_root:
            runtime.deliver(runtime.hooks.run_end, self)
            self._set_run_totals()
            runtime.instruments.runs.add(1, metric_attributes)
            if ledger.totals.cost_known:
                runtime.instruments.run_cost.record(
                    ledger.totals.cost_usd, {sc.GEN_AI_AGENT_NAME: self.name}
                )
        invocation_attributes: dict[str, AttributeValue] = {
            sc.GEN_AI_OPERATION_NAME: sc.GenAiOperationNameValues.INVOKE_AGENT,
            **metric_attributes,
        }
        instruments = runtime.instruments
        instruments.agent_duration.record(
            time.monotonic() - self.started, invocation_attributes, self.span
        )
        llm_calls, tool_calls, input_tokens, output_tokens = (
            now - then
            for now, then in zip(_counts(self.ledger), self._counts_at_start, strict=True)
        )
        instruments.agent_inference_calls.record(llm_calls, invocation_attributes)
        instruments.agent_tool_calls.record(tool_calls, invocation_attributes)
        if llm_calls:
            self.span.set_attributes(
                {
                    sc.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
                    sc.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
                }
            )

    def _set_run_totals(self) -> None:
        assert self.ledger is not None
        totals = self.ledger.totals
        attributes: dict[str, AttributeValue] = {
            sc.RUN_USAGE_INPUT_TOKENS: totals.input_tokens,
            sc.RUN_USAGE_OUTPUT_TOKENS: totals.output_tokens,
            sc.RUN_LLM_CALLS: totals.llm_calls,
            sc.RUN_TOOL_CALLS: totals.tool_calls,
            sc.RUN_HANDOFFS: totals.handoffs,
            sc.RUN_RETRIES: totals.retries,
            sc.RUN_TOOL_FAILURES: totals.tool_failures,
            sc.RUN_ANOMALIES: totals.anomalies,
            sc.RUN_DENIALS: totals.denials,
        }
        if totals.cost_known:
            attributes[sc.RUN_COST_USD] = round(totals.cost_usd, 10)
        self.span.set_attributes(attributes)


def _counts(ledger: RunLedger | None) -> tuple[int, int, int, int]:
    """LLM calls, tool calls, input and output tokens of the run so far."""
    if ledger is None:
        return (0, 0, 0, 0)
    totals = ledger.totals
    return (totals.llm_calls, totals.tool_calls, totals.input_tokens, totals.output_tokens)


class agent:
    """Trace an agent run: a context manager (sync and async) and a decorator.

    >>> with otel_agents.agent("intake", description="Summarizes vendor data") as run:
    ...     ...
    >>> @otel_agents.agent("provisioning")
    ... async def provision(summary): ...
    """

    def __init__(
        self,
        name: str,
        *,
        id: str | None = None,
        description: str | None = None,
        version: str | None = None,
        conversation_id: str | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        self._runs: list[tuple[AgentRun, otel_context.Context]] = []
        self.spec: AgentSpec | None = None
        try:
            self.spec = AgentSpec(
                name=name,
                agent_id=id,
                description=description,
                version=version,
                conversation_id=conversation_id,
                attributes=dict(attributes or {}),
            )
        except Exception as exc:  # the agent then runs unrecorded
            report_internal_error("agent spec", exc)

    # `__enter__` and `__exit__` are boundaries: they guard every call into our code in
    # line and put back the context they found if ours failed to.

    def __enter__(self) -> AgentRun:
        entry = otel_context.get_current()
        try:
            run = AgentRun.start(self.spec) if self.spec is not None else None
        except Exception as exc:
            report_internal_error("agent start", exc)
            run = None
        if run is None:
            if otel_context.get_current() is not entry:
                otel_context.attach(entry)
            run = AgentRun.unrecorded(self.spec)
        self._runs.append((run, entry))
        return run

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._runs:
            return
        run, entry = self._runs.pop()
        try:
            run.finish(exc)
        except Exception as internal:
            report_internal_error("agent finish", internal)
        if otel_context.get_current() is not entry:
            otel_context.attach(entry)

    async def __aenter__(self) -> AgentRun:
        try:
            return self.__enter__()
        except Exception as internal:
            report_internal_error("agent start", internal)
            return AgentRun.unrecorded(self.spec)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.__exit__(exc_type, exc, tb)
        except Exception as internal:
            report_internal_error("agent finish", internal)
            if self._runs:
                _, entry = self._runs.pop()
                otel_context.attach(entry)

    def __call__(self, func: F) -> F:
        spec = self.spec
        if spec is None:
            return func
        try:
            return wrap_callable(func, lambda args, kwargs: AgentRun.start(spec))
        except Exception as exc:
            report_internal_error("agent decorator", exc)
            return func
