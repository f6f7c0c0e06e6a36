"""Instructions one call adds, counted by valgrind's callgrind (no hardware counters needed).

    python benchmarks/callgrind.py [--workloads NAME ...] [--variants NAME ...]
        [--calls N1,N2] [--warmup W] [--json PATH]

Each (workload, variant) runs in a fresh Python process under `valgrind --tool=callgrind`,
twice: once making N1 calls and once N2 calls, after the same W warm-up calls. The total
instructions (Ir) of the whole process are read off the `summary:`/`totals:` line of the
callgrind out file, and (Ir(N2) - Ir(N1)) / (N2 - N1) is the count per call: start-up,
imports, set-up and warm-up are the same in both runs and cancel out. Callgrind simulates
the CPU, so the count does not depend on the machine's load: reruns agree to well under 1%.

Workloads: those of `bench_llm_clients.py` (the real `openai` / `anthropic` SDK answered by
an in-process mock transport) and the `@otel_agents.tool` call of `bench_tool_call.py`;
their code is imported from those scripts. Variants: `bare` (no instrumentation), `floor`
(see FLOOR_NOTE), `otel-agents`, `otel-agents-run` (inside an `otel_agents.agent` run), and
the peers of `bench_llm_clients.py` when they are importable (e.g. from /tmp/bench-venv).

Only the public API (`otel_agents.instrument`, `agent`, `tool`) is used, so any version of
otel-agents on PYTHONPATH can be measured.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

TOOL_WORKLOAD = "tool-call"
LLM_WORKLOADS = (
    "openai-chat",
    "openai-chat-stream",
    "anthropic-messages",
    "anthropic-messages-stream",
)
WORKLOADS = (*LLM_WORKLOADS, TOOL_WORKLOAD)
BASE_VARIANTS = ("bare", "floor", "otel-agents", "otel-agents-run")
PEER_VARIANTS = ("openai-v2", "openllmetry", "openinference")
VARIANTS = (*BASE_VARIANTS, *PEER_VARIANTS)
FLOOR_NOTE = (
    "floor = one hand-written OpenTelemetry span (`start_as_current_span`) with 20 "
    "attributes set at start, plus ONE histogram point (`gen_ai.client.operation.duration`), "
    "around the same call, recorded into the same SDK as every variant: TracerProvider + "
    "SimpleSpanProcessor with an exporter that counts and drops spans (the recording a "
    "BatchSpanProcessor does on the calling thread, without its queue and worker), "
    "MeterProvider + in-memory delta reader (never collected during the calls)"
)
VERSIONED = ("openai", "anthropic", "opentelemetry-sdk", "opentelemetry-api", "otel-agents")

_TOTALS = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)
_EVENTS = re.compile(r"^events:\s+(.+)$", re.MULTILINE)


# ---------------------------------------------------------------------------- parsing


def parse_ir(text: str) -> int:
    """Total Ir of a callgrind out file: the `totals:` line, else `summary:` (first event)."""
    events = _EVENTS.search(text)
    if events is not None and events.group(1).split()[0] != "Ir":
        raise ValueError(f"callgrind out file does not count Ir first: {events.group(1)!r}")
    found = {m.group(0).split(":")[0]: int(m.group(1)) for m in _TOTALS.finditer(text)}
    for key in ("totals", "summary"):
        if key in found:
            return found[key]
    raise ValueError("callgrind out file has no totals: or summary: line")


def per_call(ir1: int, ir2: int, n1: int, n2: int) -> float:
    """Instructions per call from two runs that differ only in their number of calls."""
    if n2 <= n1:
        raise ValueError(f"need N2 > N1, got {n1}, {n2}")
    return (ir2 - ir1) / (n2 - n1)


NOT_INSTALLED = 2  # the exit code of a child whose variant is not installed


def instructions_per_call(
    child_argv: Callable[[int], Sequence[str]], n1: int, n2: int
) -> float | None:
    """Instructions per call of a child process (`child_argv(n)`: the command that makes
    n calls after the same warm-up), counted under callgrind with N1 and N2 calls, so that
    start-up and warm-up cancel out. None when the child exits `NOT_INSTALLED`. The other
    benchmarks (`bench_openai_agents`, `bench_mcp`, `bench_langgraph`) count with this."""
    totals = []
    with tempfile.TemporaryDirectory(prefix="callgrind-") as outdir:
        for calls in (n1, n2):
            out = Path(outdir) / f"callgrind.{calls}.out"
            command = [
                "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                "--dump-instr=no", "--compress-strings=no", *child_argv(calls),
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode == NOT_INSTALLED:
                return None
            if done.returncode != 0:
                raise RuntimeError(f"{command[-4:]}: exit {done.returncode}: {done.stderr[-500:]}")
            totals.append(parse_ir(out.read_text()))
    return per_call(totals[0], totals[1], n1, n2)


def ratio(added: float | None, floor_added: float | None) -> float | None:
    if added is None or not floor_added:
        return None
    return added / floor_added


# --------------------------------------------------------------------- the child process

FLOOR_ATTRIBUTES: dict[str, Any] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4.1",
    "gen_ai.response.model": "gpt-4.1-2025-04-14",
    "gen_ai.response.id": "chatcmpl-0000000000",
    "gen_ai.response.finish_reasons": ("tool_calls",),
    "gen_ai.usage.input_tokens": 850,
    "gen_ai.usage.output_tokens": 120,
    "gen_ai.usage.cache_read.input_tokens": 0,
    "gen_ai.usage.reasoning.output_tokens": 0,
    "gen_ai.request.max_tokens": 1024,
    "gen_ai.request.temperature": 0.0,
    "gen_ai.output.type": "text",
    "gen_ai.conversation.id": "conv-0000",
    "gen_ai.agent.name": "bench",
    "server.address": "api.openai.test",
    "server.port": 443,
    "otel_agents.cost.usd": 0.0005,
    "otel_agents.tool_calls.requested": 2,
    "otel_agents.run.id": "0" * 32,
}


def _floor(telemetry: Any, call: Callable[[], object]) -> Callable[[], object]:
    from opentelemetry.trace import SpanKind

    tracer = telemetry.tracer_provider.get_tracer("floor")
    histogram = telemetry.meter_provider.get_meter("floor").create_histogram(
        "gen_ai.client.operation.duration", unit="s"
    )
    point = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4.1"}

    def floor() -> object:
        with tracer.start_as_current_span(
            "chat gpt-4.1", kind=SpanKind.CLIENT, attributes=FLOOR_ATTRIBUTES
        ):
            result = call()
        histogram.record(0.001, point)
        return result

    return floor


def child(workload: str, variant: str, warmup: int, calls: int) -> dict[str, Any]:
    """Set up one (workload, variant), warm up, make `calls` calls; what it recorded."""
    import contextlib

    import bench_llm_clients as llm

    telemetry = llm.Telemetry.install()
    around: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext
    uninstall: Callable[[], None] = lambda: None  # noqa: E731
    if workload == TOOL_WORKLOAD:
        from bench_tool_call import create_account

        import otel_agents

        call: Callable[[], object] = lambda: create_account("v1")  # noqa: E731
        if variant in ("otel-agents", "otel-agents-run"):
            otel_agents.instrument(
                tracer_provider=telemetry.tracer_provider,
                meter_provider=telemetry.meter_provider,
                configure_sdk=False,
                capture_content="NO_CONTENT",
            )
            uninstall = otel_agents.uninstrument
            traced = otel_agents.tool(create_account)
            call = lambda: traced("v1")  # noqa: E731
            if variant == "otel-agents-run":
                around = llm.otel_agents_run
        elif variant == "floor":
            call = _floor(telemetry, call)
        elif variant != "bare":
            raise SystemExit(f"variant {variant} does not apply to {workload}")
    else:
        spec = next(w for w in llm.WORKLOADS if w.key == workload)
        if variant == "floor":
            client = llm.make_client(spec.sdk, spec.fixture)
            call = _floor(telemetry, lambda: spec.call(client))
        else:
            v = next(v for v in llm.VARIANTS if v.key == variant)
            if not v.installed(spec.sdk):
                raise SystemExit(f"variant {variant} is not installed for {spec.sdk}")
            client = llm.make_client(spec.sdk, spec.fixture, native_tracing=v.native_tracing)
            uninstall = v.install(telemetry, spec.sdk)
            around = v.around
            call = lambda: spec.call(client)  # noqa: E731
    with around():
        for _ in range(warmup):
            call()
        before = telemetry.spans.count
        for _ in range(calls):
            call()
        spans = telemetry.spans.count - before
    uninstall()
    module = sys.modules.get("otel_agents")
    return {
        "spans_per_call": spans / calls if calls else 0.0,
        "otel_agents": getattr(module, "__file__", None),
    }


# -------------------------------------------------------------------- the parent process


@dataclass
class Row:
    workload: str
    variant: str
    per_call: float | None = None
    added: float | None = None
    ratio_to_floor: float | None = None
    spans_per_call: float | None = None
    error: str = ""


def run_one(
    workload: str, variant: str, warmup: int, calls: int, outdir: Path
) -> tuple[int, dict[str, Any]]:
    out = outdir / f"callgrind.{workload}.{variant}.{calls}.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        "--dump-instr=no",
        "--compress-strings=no",
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        workload,
        variant,
        str(warmup),
        str(calls),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = (done.stderr + done.stdout).strip().splitlines()
        tail = [f"exit {done.returncode}", *[x for x in lines if not x.startswith("==")][-3:]]
        raise RuntimeError(" / ".join(tail) or f"exit {done.returncode}")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    return parse_ir(out.read_text()), info


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def table(rows: Sequence[Row]) -> list[str]:
    out = [
        "| workload | variant | instructions/call | added over bare | added ÷ floor's added "
        "| spans/call |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r.error:
            out.append(f"| {r.workload} | {r.variant} | {r.error} | | | |")
            continue
        added = "" if r.added is None else f"{r.added:,.0f}"
        rat = "" if r.ratio_to_floor is None else f"{r.ratio_to_floor:.2f}x"
        spans = "" if r.spans_per_call is None else f"{r.spans_per_call:g}"
        out.append(
            f"| {r.workload} | {r.variant} | {r.per_call:,.0f} | {added} | {rat} | {spans} |"
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(BASE_VARIANTS))
    parser.add_argument("--calls", default="20,120", help="N1,N2 (default 20,120)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--json", type=Path, help="write the rows and versions here")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)

    if options.child:
        workload, variant, warmup, calls = options.child
        print(json.dumps(child(workload, variant, int(warmup), int(calls))))
        return 0

    if shutil.which("valgrind") is None:
        print(
            "ERROR: valgrind is not installed, so NO instruction counts were measured.\n"
            "Install it (Debian/Ubuntu: apt-get install -y valgrind) and rerun.",
            file=sys.stderr,
        )
        return 2
    n1, n2 = (int(n) for n in options.calls.split(","))
    if n2 <= n1:
        parser.error("--calls N1,N2 needs N2 > N1")
    variants = ["bare", *[v for v in options.variants if v != "bare"]]
    started = time.perf_counter()
    rows: list[Row] = []
    located: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="callgrind-") as tmp:
        for workload in options.workloads:
            bare: float | None = None
            floor: float | None = None
            for variant in variants:
                row = Row(workload, variant)
                if workload == TOOL_WORKLOAD and variant in PEER_VARIANTS:
                    continue
                try:
                    ir1, _ = run_one(workload, variant, options.warmup, n1, Path(tmp))
                    ir2, info = run_one(workload, variant, options.warmup, n2, Path(tmp))
                except Exception as error:
                    row.error = f"failed: {error}".replace("|", "/")
                    rows.append(row)
                    print(f"{workload} {variant}: {row.error}", file=sys.stderr)
                    continue
                row.per_call = per_call(ir1, ir2, n1, n2)
                row.spans_per_call = info["spans_per_call"]
                if info["otel_agents"]:
                    located.add(info["otel_agents"])
                if variant == "bare":
                    bare = row.per_call
                elif bare is not None:
                    row.added = row.per_call - bare
                if variant == "floor":
                    floor = row.added
                rows.append(row)
                print(f"{workload} {variant}: {row.per_call:,.0f} Ir/call", file=sys.stderr)
            for row in rows:
                if row.workload == workload and row.variant not in ("bare", "floor"):
                    row.ratio_to_floor = ratio(row.added, floor)
    elapsed = time.perf_counter() - started
    found = versions()
    out = [
        f"## Instructions per call (callgrind, Ir; calls {n1} and {n2} after "
        f"{options.warmup} warm-up)",
        "",
        *table(rows),
        "",
        f"- instructions/call = (Ir({n2} calls) - Ir({n1} calls)) / {n2 - n1}, whole process "
        "under callgrind; added = variant - bare; ratio = added ÷ floor's added.",
        f"- {FLOOR_NOTE}.",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in found.items()),
        "- otel_agents imported from: " + (", ".join(sorted(located)) or "-"),
        f"- run time: {elapsed:.0f} s",
    ]
    print("\n".join(out))
    if options.json:
        options.json.write_text(
            json.dumps(
                {
                    "calls": [n1, n2],
                    "warmup": options.warmup,
                    "floor": FLOOR_NOTE,
                    "versions": found,
                    "otel_agents": sorted(located),
                    "seconds": elapsed,
                    "rows": [asdict(r) for r in rows],
                },
                indent=2,
            )
        )
    failed = any(r.error for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
