"""Overhead of otel-agents on an MCP `tools/call`: the real `mcp` client and server in one
process, against the same call with no tracing and with the SDK's own tracing only.

    python benchmarks/bench_mcp.py [--calls N] [--repeat R] [--instructions] [--json PATH]

Transports (the SDK's in-memory ones): `direct` (`Client(server)`: the 2026-07-28 protocol
in process, no JSON-RPC framing) and `streams` (`Client(server, mode="legacy")`: JSON-RPC
messages over memory streams, the framing stdio and HTTP use, without the pipe or socket).
Variants, each in a fresh process:

- `bare`: the SDK's tracer is a no-op tracer (what an application without OpenTelemetry
  pays for the SDK's `otel_span` calls);
- `sdk`: the SDK traces itself into a real TracerProvider (SimpleSpanProcessor, an exporter
  that counts and drops spans): its client span (streams only), its server span;
- `otel-agents`: `otel_agents.instrument()` on the same provider: the client's and the
  server's `execute_tool` spans on top of the SDK's, the policy gate (no policy), metrics;
- `otel-agents-run`: the same inside an `otel_agents.agent` run (ledger, attempts, totals).

CPU time per call is the best of R repeats of N calls on one open session
(`time.process_time`, so other processes on a busy machine do not count; wall time is shown
too). `--instructions` also counts instructions per call with valgrind's callgrind, as
`callgrind.py` does: two runs that differ only in their number of calls, subtracted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

TRANSPORTS = ("direct", "streams")
VARIANTS = (
    "bare", "sdk", "otel-agents", "otel-agents-run", "openinference", "openinference+otel-agents",
)  # fmt: skip
# OpenInference's MCP instrumentation carries the trace context across and makes no spans of
# its own; OpenLLMetry's (`opentelemetry-instrumentation-mcp` 0.62.3) fails to instrument
# mcp 2.x, so it has no row.


# --------------------------------------------------------------------- the child process


class _Counting:
    """A span exporter that counts and drops what it is given."""

    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.count += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 0) -> bool:
        return True


def _server() -> Any:
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("bench", log_level="WARNING")

    @server.tool()
    def lookup_vendor(vendor_id: str) -> str:
        """Find a vendor by id."""
        return f"vendor {vendor_id}"

    return server


def _setup(variant: str) -> tuple[_Counting, Any]:
    """The tracing of `variant`; returns the span counter and the context to call in."""
    import contextlib

    from mcp.shared import _otel as mcp_otel
    from opentelemetry import trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exporter = _Counting()
    if variant == "bare":
        mcp_otel._tracer = trace.NoOpTracer()
        return exporter, contextlib.nullcontext()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[arg-type]
    mcp_otel._tracer = provider.get_tracer("mcp-python-sdk")
    if variant == "sdk":
        return exporter, contextlib.nullcontext()
    if variant.startswith("openinference"):
        try:
            from openinference.instrumentation.mcp import MCPInstrumentor
        except ImportError:
            sys.exit(2)  # not installed: the benchmarks' exit code for it
        MCPInstrumentor().instrument(tracer_provider=provider)
        if variant == "openinference":
            return exporter, contextlib.nullcontext()
    import otel_agents

    otel_agents.instrument(
        tracer_provider=provider,
        meter_provider=MeterProvider(),
        configure_sdk=False,
        capture_content="NO_CONTENT",
        detectors=False,
    )
    if variant == "otel-agents-run":
        return exporter, otel_agents.agent("bench")
    return exporter, contextlib.nullcontext()


async def _calls(transport: str, variant: str, calls: int, repeat: int) -> dict[str, Any]:
    from mcp import Client

    exporter, around = _setup(variant)
    mode = "legacy" if transport == "streams" else "auto"
    best_cpu = best_wall = float("inf")
    spans = 0
    async with Client(_server(), mode=mode) as client:
        with around:
            for _ in range(max(calls // 10, 5)):  # warm up
                await client.call_tool("lookup_vendor", {"vendor_id": "v-1"})
            for _ in range(repeat):
                before = exporter.count
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(calls):
                    await client.call_tool("lookup_vendor", {"vendor_id": "v-1"})
                best_cpu = min(best_cpu, time.process_time() - cpu)
                best_wall = min(best_wall, time.perf_counter() - wall)
                spans = exporter.count - before
    return {
        "cpu_us": best_cpu / calls * 1e6,
        "wall_us": best_wall / calls * 1e6,
        "spans_per_call": spans / calls,
    }


def child(transport: str, variant: str, calls: int, repeat: int) -> dict[str, Any]:
    return asyncio.run(_calls(transport, variant, calls, repeat))


# -------------------------------------------------------------------- the parent process


def _run_child(transport: str, variant: str, calls: int, repeat: int) -> dict[str, Any] | None:
    """The child's measurements; None when the variant is not installed."""
    command = [sys.executable, __file__, "--child", transport, variant, str(calls), str(repeat)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode == 2:
        return None
    if done.returncode != 0:
        raise RuntimeError(f"{variant}: exit {done.returncode}: {done.stderr[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _instructions(transport: str, variant: str, n1: int, n2: int) -> float:
    from callgrind import instructions_per_call

    def child_argv(calls: int) -> list[str]:
        return [sys.executable, __file__, "--child", transport, variant, str(calls), "1"]

    # The warm-up grows with the calls (calls // 10, at least 5): count it in.
    warm1, warm2 = max(n1 // 10, 5), max(n2 // 10, 5)
    count = instructions_per_call(child_argv, n1, n2)
    assert count is not None, f"{variant}: not installed"
    return count * (n2 - n1) / ((n2 + warm2) - (n1 + warm1))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--transports", nargs="+", choices=TRANSPORTS, default=list(TRANSPORTS))
    parser.add_argument("--instructions", action="store_true", help="also run callgrind")
    parser.add_argument("--instruction-calls", default="50,150", help="N1,N2 for callgrind")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        transport, variant, calls, repeat = options.child
        print(json.dumps(child(transport, variant, int(calls), int(repeat))))
        return 0
    if options.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind")
    n1, n2 = (int(n) for n in options.instruction_calls.split(","))
    rows = []
    print(
        "| transport | variant | CPU µs/call | added CPU µs | wall µs/call | spans/call "
        "| instructions/call | added instructions |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for transport in options.transports:
        bare_cpu = bare_ir = None
        for variant in VARIANTS:
            row = {"transport": transport, "variant": variant}
            measured = _run_child(transport, variant, options.calls, options.repeat)
            if measured is None:
                print(f"| {transport} | {variant} | not installed | | | | | |", flush=True)
                continue
            row.update(measured)
            if options.instructions:
                row["instructions"] = _instructions(transport, variant, n1, n2)
            if variant == "bare":
                bare_cpu, bare_ir = row["cpu_us"], row.get("instructions")
            rows.append(row)
            added = row["cpu_us"] - bare_cpu if bare_cpu is not None else 0.0
            ir = row.get("instructions")
            ir_text = f"{ir / 1e3:,.0f}k" if ir is not None else ""
            ir_added = f"{(ir - bare_ir) / 1e3:,.0f}k" if ir is not None and bare_ir else ""
            print(
                f"| {transport} | {variant} | {row['cpu_us']:,.0f} | {added:,.0f} "
                f"| {row['wall_us']:,.0f} | {row['spans_per_call']:g} | {ir_text} | {ir_added} |",
                flush=True,
            )
    if options.json:
        options.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
