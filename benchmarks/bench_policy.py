"""Added cost per tool call of policy evaluation and the detectors.

    python benchmarks/bench_policy.py [--calls N] [--repeat R]

Every variant runs side by side in one process on the real OpenTelemetry SDK (a span
processor that keeps nothing, so we measure recording, not exporting), inside an agent run,
calling the same tool the way the vendor-onboarding example does:
`grant_permission(["acct-1"], "viewer")` by the `provisioning` agent. The policy is the
shipped `examples/policies/vendor-onboarding.yaml` (7 rules; this call is decided by the
fifth, after argument checks on two earlier ones). Each row is the best of R repeats of N
calls; the ratio column is against plain `@otel_agents.tool` (no policy, no detectors).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pydantic
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import otel_agents
from otel_agents.policy import CallFacts, PolicyEvaluator, ToolContract, ToolProfile, load_policy

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


def best_of(repeat: int, calls: int, body: Callable[[], object]) -> float:
    """Microseconds per call: the best of `repeat` timed loops (least disturbed)."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(calls):
            body()
        timings.append((time.perf_counter() - started) / calls * 1e6)
    return min(timings)


def traced(
    options: argparse.Namespace,
    provider: TracerProvider,
    contract: ToolContract | None,
    **instrument: Any,
) -> float:
    """µs per call of the traced tool, inside one agent run, with these instrument options."""
    otel_agents.instrument(
        tracer_provider=provider,
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        configure_sdk=False,
        **instrument,
    )
    extra = {"contract": contract} if contract else {}
    tool = otel_agents.tool(tags=["grants:iam"], records="account_ids", **extra)(grant_permission)
    accounts = ["acct-1"]
    try:
        with otel_agents.agent("provisioning"):
            return best_of(options.repeat, options.calls, lambda: tool(accounts, "viewer"))
    finally:
        otel_agents.uninstrument()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(DiscardingExporter()))
    policy = load_policy(POLICY)
    no_detectors: dict[str, Any] = {"detectors": False}

    evaluator = PolicyEvaluator(policy)
    facts = CallFacts(
        ToolProfile("provisioning", "grant_permission", ("grants:iam",), None, "staging"),
        arguments={"account_ids": ["acct-1"], "role": "viewer"},
        records=1,
    )
    assert evaluator.evaluate(facts).rule == "routine-grants"

    rows: list[tuple[str, float]] = [
        (
            "bare function",
            best_of(options.repeat, options.calls, lambda: grant_permission(["a"], "viewer")),
        ),
        (
            "policy evaluation alone (no span)",
            best_of(options.repeat, options.calls, lambda: evaluator.evaluate(facts)),
        ),
        ("plain @tool (no policy, no detectors)", traced(options, provider, None, **no_detectors)),
        ("@tool + detectors", traced(options, provider, None)),
        ("@tool + policy", traced(options, provider, None, policy=policy, **no_detectors)),
        ("@tool + policy + detectors", traced(options, provider, None, policy=policy)),
        (
            "@tool + policy + detectors + JSON Schema contract",
            traced(options, provider, GRANT_CONTRACT, policy=policy),
        ),
        (
            "@tool + policy + detectors + pydantic contract",
            traced(options, provider, PYDANTIC_CONTRACT, policy=policy),
        ),
    ]

    plain = rows[2][1]
    print("policy and detector overhead per tool call,", end=" ")
    print(f"best of {options.repeat} x {options.calls} calls\n")
    print("| variant | µs per call | added over plain @tool | ratio to plain @tool |")
    print("|---|---:|---:|---:|")
    for label, micros in rows:
        if label in ("bare function", "policy evaluation alone (no span)"):
            print(f"| {label} | {micros:.2f} | | |")
        else:
            print(f"| {label} | {micros:.2f} | {micros - plain:+.2f} | {micros / plain:.2f}x |")


if __name__ == "__main__":
    main()
