"""Added cost per tool call of policy evaluation and the detectors.

    python benchmarks/bench_policy.py [--calls N] [--repeat R]

Every variant runs in one process on the real OpenTelemetry SDK (a span processor that
keeps nothing, so we measure recording, not exporting; a metric reader, so metrics are
recorded), inside an agent run, calling the same tool the way the vendor-onboarding example
does: `grant_permission(["acct-1"], "viewer")` by the `provisioning` agent. The policy is
the shipped `examples/policies/vendor-onboarding.yaml` (7 rules; this call is decided by the
fifth, after argument checks on two earlier ones).

The variants take turns: each of R rounds runs every variant for N calls, so a machine that
slows down for a while slows all of them alike. Each row is the best of its R rounds; the
"added" and ratio columns are against plain `@otel_agents.tool` (no policy, no detectors).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pydantic
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import otel_agents
from otel_agents.policy import (
    CallFacts,
    Policy,
    PolicyEvaluator,
    ToolContract,
    ToolProfile,
    load_policy,
)

POLICY = Path(__file__).resolve().parent.parent / "examples" / "policies" / "vendor-onboarding.yaml"
GRANT_CONTRACT = ToolContract(
    input={
        "type": "object",
        "properties": {
            "account_ids": {"type": "array", "items": {"type": "string"}},
            "role": {"enum": ["viewer", "billing", "admin", "owner"]},
        },
        "required": ["account_ids", "role"],
    },
    output={"type": "object", "required": ["granted"]},
)
WARM_UP_CALLS = 200


class GrantInput(pydantic.BaseModel):
    account_ids: list[str]
    role: Literal["viewer", "billing", "admin", "owner"]


class GrantOutput(pydantic.BaseModel):
    granted: str


PYDANTIC_CONTRACT = ToolContract(input=GrantInput, output=GrantOutput)


class DiscardingExporter(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def grant_permission(account_ids: list[str], role: str) -> dict[str, Any]:
    return {"granted": role, "accounts": len(account_ids)}


def per_call(calls: int, body: Callable[[], object]) -> float:
    """Microseconds per call of `body`, over one timed loop of `calls` calls."""
    started = time.perf_counter()
    for _ in range(calls):
        body()
    return (time.perf_counter() - started) / calls * 1e6


@dataclass
class Variant:
    """One row of the table: what is switched on, and the timings of its rounds."""

    label: str
    traced: bool = True
    policy: bool = False
    detectors: bool = False
    contract: ToolContract | None = None
    timings: list[float] = field(default_factory=list)

    def round(self, calls: int, provider: TracerProvider, policy: Policy) -> None:
        if not self.traced:
            self.timings.append(per_call(calls, lambda: grant_permission(["a"], "viewer")))
            return
        options: dict[str, Any] = {"detectors": self.detectors}
        if self.policy:
            options["policy"] = policy
        otel_agents.instrument(
            tracer_provider=provider,
            meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
            configure_sdk=False,
            **options,
        )
        extra = {"contract": self.contract} if self.contract else {}
        tool = otel_agents.tool(tags=["grants:iam"], records="account_ids", **extra)(
            grant_permission
        )
        accounts = ["acct-1"]
        try:
            with otel_agents.agent("provisioning"):
                per_call(WARM_UP_CALLS, lambda: tool(accounts, "viewer"))
                self.timings.append(per_call(calls, lambda: tool(accounts, "viewer")))
        finally:
            otel_agents.uninstrument()


def evaluation_alone(calls: int, policy: Policy) -> float:
    """µs per `PolicyEvaluator.evaluate` of the benchmark's call, no OpenTelemetry at all."""
    evaluator = PolicyEvaluator(policy)
    facts = CallFacts(
        ToolProfile("provisioning", "grant_permission", ("grants:iam",), None, "staging"),
        arguments={"account_ids": ["acct-1"], "role": "viewer"},
        records=1,
    )
    assert evaluator.evaluate(facts).rule == "routine-grants"
    return per_call(calls, lambda: evaluator.evaluate(facts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(DiscardingExporter()))
    policy = load_policy(POLICY)
    plain = Variant("plain @tool (no policy, no detectors)")
    variants = [
        Variant("bare function", traced=False),
        plain,
        Variant("@tool + detectors", detectors=True),
        Variant("@tool + policy", policy=True),
        Variant("@tool + policy + detectors", policy=True, detectors=True),
        Variant(
            "@tool + policy + detectors + JSON Schema contract",
            policy=True,
            detectors=True,
            contract=GRANT_CONTRACT,
        ),
        Variant(
            "@tool + policy + detectors + pydantic contract",
            policy=True,
            detectors=True,
            contract=PYDANTIC_CONTRACT,
        ),
    ]
    evaluation = []
    for _ in range(options.repeat):
        evaluation.append(evaluation_alone(options.calls, policy))
        for variant in variants:
            variant.round(options.calls, provider, policy)

    base = min(plain.timings)
    print("policy and detector overhead per tool call,", end=" ")
    print(f"best of {options.repeat} rounds x {options.calls} calls\n")
    print("| variant | µs per call | added over plain @tool | ratio to plain @tool |")
    print("|---|---:|---:|---:|")
    print(f"| bare function | {min(variants[0].timings):.2f} | | |")
    print(f"| policy evaluation alone (no span) | {min(evaluation):.2f} | | |")
    for variant in variants[1:]:
        micros = min(variant.timings)
        print(f"| {variant.label} | {micros:.2f} | {micros - base:+.2f} | {micros / base:.2f}x |")


if __name__ == "__main__":
    main()
