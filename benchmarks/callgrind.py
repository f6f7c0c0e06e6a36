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
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
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
PEER_VARIANTS = ("openai-v2", "openllmetry", "openinference", "anthropic-native")
VARIANTS = (*BASE_VARIANTS, "otel-agents-lone", "otel-agents-content", *PEER_VARIANTS)
README_START = "<!-- callgrind.py --readme: start -->"
README_END = "<!-- callgrind.py --readme: end -->"
FLOOR_NOTE = (
    "floor = what a hand-written instrumentation recording the same telemetry costs: one "
    "OpenTelemetry span (`start_as_current_span`) with 20 attributes set at start around the "
    "same call, plus the same metric points otel-agents records for that call (FLOOR_POINTS: "
    "each histogram point a `Histogram.record`, each counter increment a `Counter.add`, "
    "with 4 or 5 attributes), recorded into the same SDK as every variant: TracerProvider + "
    "SimpleSpanProcessor with an exporter that counts and drops spans (the recording a "
    "BatchSpanProcessor does on the calling thread, without its queue and worker), "
    "MeterProvider + in-memory delta reader, collected once after the calls (in every "
    "variant: the collection records otel-agents' deferred points, so it is counted)"
)
# The metric points otel-agents records per call of each workload (histogram points,
# counter increments); `tests/test_callgrind_parse.py` checks the histogram points against
# what otel-agents records, so the floor records the same.
FLOOR_POINTS: dict[str, tuple[int, int]] = {
    "openai-chat": (3, 5),  # duration, input and output tokens; usage x4, cost
    "openai-chat-stream": (17, 4),  # + time to first chunk, 13 times per chunk
    "anthropic-messages": (3, 5),
    "anthropic-messages-stream": (25, 4),  # + time to first chunk, 21 times per chunk
    "tool-call": (1, 1),  # duration; tool calls
}
VERSIONED = (
    "openai",
    "anthropic",
    "opentelemetry-sdk",
    "opentelemetry-api",
    "otel-agents",
    "opentelemetry-instrumentation-openai-v2",
    "opentelemetry-instrumentation-openai",
    "opentelemetry-instrumentation-anthropic",
    "openinference-instrumentation-openai",
    "openinference-instrumentation-anthropic",
)

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


def _floor(telemetry: Any, call: Callable[[], object], workload: str) -> Callable[[], object]:
    from opentelemetry.trace import SpanKind

    tracer = telemetry.tracer_provider.get_tracer("floor")
    meter = telemetry.meter_provider.get_meter("floor")
    histograms, counters = FLOOR_POINTS[workload]
    histogram = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    counter = meter.create_counter("gen_ai.client.token.usage")
    point = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4.1",
        "gen_ai.response.model": "gpt-4.1-2025-04-14",
    }

    def floor() -> object:
        started = time.monotonic()
        with tracer.start_as_current_span(
            "chat gpt-4.1", kind=SpanKind.CLIENT, attributes=FLOOR_ATTRIBUTES
        ):
            result = call()
        elapsed = time.monotonic() - started
        for _ in range(histograms):
            histogram.record(elapsed, point)
        for _ in range(counters):
            counter.add(1, point)
        return result

    return floor


def _alone_in_its_interval(call: Callable[[], object]) -> Callable[[], object]:
    """The call, then the drain of otel-agents' deferred metric points that a collection
    would do: as if each call were the only one between two collections, so that no points
    of two calls are recorded together (otel-agents' least favourable case)."""
    from otel_agents.deferred_metrics import DeferredPoints

    def alone() -> object:
        result = call()
        for points in list(DeferredPoints._registry.values()):
            points.drain()
        return result

    return alone


def _wait_for_background_loaders() -> None:
    """Let otel-agents' price table finish loading on its own thread before the counted
    calls: it is start-up work, and a loader still running when a process exits would be
    counted in one run of the pair and not the other."""
    import threading

    for thread in threading.enumerate():
        if thread.name == "otel-agents prices":
            thread.join()


def child(workload: str, variant: str, warmup: int, calls: int) -> dict[str, Any]:
    """Set up one (workload, variant), warm up, make `calls` calls; what it recorded."""
    import contextlib

    if variant == "openai-v2":  # it imports `httpx`, which openai 3.x replaced by httpx2
        import httpx2

        httpx2.alias_httpx()  # before anything imports `httpx` (see bench_llm_clients)
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
            call = _floor(telemetry, call, workload)
        elif variant != "bare":
            raise SystemExit(f"variant {variant} does not apply to {workload}")
    else:
        spec = next(w for w in llm.WORKLOADS if w.key == workload)
        if variant == "floor":
            client = llm.make_client(spec.sdk, spec.fixture)
            call = _floor(telemetry, lambda: spec.call(client), workload)
        else:
            lone = variant == "otel-agents-lone"
            v = next(v for v in llm.VARIANTS if v.key == ("otel-agents" if lone else variant))
            if not v.installed(spec.sdk):
                raise SystemExit(f"variant {variant} is not installed for {spec.sdk}")
            client = llm.make_client(spec.sdk, spec.fixture, native_tracing=v.native_tracing)
            uninstall = v.install(telemetry, spec.sdk)
            around = v.around
            call = lambda: spec.call(client)  # noqa: E731
            if lone:
                call = _alone_in_its_interval(call)
    _wait_for_background_loaders()
    with around():
        for _ in range(warmup):
            call()
        before = telemetry.spans.count
        for _ in range(calls):
            call()
        spans = telemetry.spans.count - before
    telemetry.metric_reader.collect()  # records otel-agents' deferred histogram points
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


def applies(workload: str, variant: str) -> bool:
    """Whether a variant has a row for a workload (peers instrument LLM clients only, some
    one SDK only)."""
    if workload == TOOL_WORKLOAD:
        return variant in ("bare", "floor", "otel-agents", "otel-agents-run")
    sdk = workload.split("-")[0]
    if variant == "openai-v2":
        return sdk == "openai"
    if variant == "anthropic-native":
        return sdk == "anthropic"
    return True


def measure(
    workload: str, variant: str, warmup: int, n1: int, n2: int, outdir: Path
) -> tuple[Row, str | None]:
    """One (workload, variant): its row (instructions per call, or why it has none) and
    where otel_agents was imported from."""
    row = Row(workload, variant)
    try:
        ir1, _ = run_one(workload, variant, warmup, n1, outdir)
        ir2, info = run_one(workload, variant, warmup, n2, outdir)
    except Exception as error:
        row.error = f"failed: {error}".replace("|", "/")
        print(f"{workload} {variant}: {row.error}", file=sys.stderr)
        return row, None
    row.per_call = per_call(ir1, ir2, n1, n2)
    row.spans_per_call = info["spans_per_call"]
    print(f"{workload} {variant}: {row.per_call:,.0f} Ir/call", file=sys.stderr)
    return row, info["otel_agents"]


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


LABELS = {
    "floor": "hand-written floor: span + the same metric points",
    "otel-agents": "**otel-agents**",
    "otel-agents-run": "otel-agents, inside an agent run (decision path on)",
    "otel-agents-lone": "otel-agents, each call alone between two metric collections",
    "otel-agents-content": "otel-agents, content capture on",
    "openai-v2": "OpenTelemetry contrib openai-v2",
    "openllmetry": "OpenLLMetry",
    "openinference": "OpenInference",
    "anthropic-native": "anthropic SDK's own tracing",
}
PEERS_OF_OURS = ("openai-v2", "openllmetry", "openinference", "anthropic-native")


def summary_tables(rows: Sequence[Row], found: Mapping[str, str], calls: str) -> list[str]:
    """The README's tables: instructions each variant adds per call, per workload, with
    its multiple of otel-agents' (peers) or of the floor's (ours); then how otel-agents
    stands against the lightest peer and the floor."""
    cell = {(r.workload, r.variant): r for r in rows}
    llm = [w for w in LLM_WORKLOADS if (w, "bare") in cell]
    out = [
        "| instructions added per call | " + " | ".join(w.replace("-", " ") for w in llm) + " |",
        "|---|" + "---:|" * len(llm),
    ]
    for variant in (v for v in LABELS if any((w, v) in cell for w in llm)):
        cells = []
        for workload in llm:
            row, ours = cell.get((workload, variant)), cell.get((workload, "otel-agents"))
            if row is None:
                cells.append("—")
            elif row.error or row.added is None:
                cells.append("fails" if row.error else "")
            elif variant in PEERS_OF_OURS and ours and ours.added:
                cells.append(f"+{row.added / 1e3:,.0f}k ({row.added / ours.added:.1f}x ours)")
            else:
                cells.append(f"+{row.added / 1e3:,.0f}k")
        out.append(f"| {LABELS[variant]} | " + " | ".join(cells) + " |")
    bare = [cell[(w, "bare")].per_call for w in llm]
    out.append("| *(bare SDK call)* | " + " | ".join(f"{b / 1e3:,.0f}k" for b in bare if b) + " |")
    out += [
        "",
        "| otel-agents' added instructions | "
        + " | ".join(w.replace("-", " ") for w in llm)
        + " |",
    ]
    out.append("|---|" + "---:|" * len(llm))
    lightest, floors = [], []
    for workload in llm:
        ours = cell.get((workload, "otel-agents"))
        peers = [
            cell[(workload, p)]
            for p in PEERS_OF_OURS
            if (workload, p) in cell and cell[(workload, p)].added is not None
        ]
        peer = min(peers, key=lambda r: r.added or 0.0, default=None)
        if ours is None or ours.added is None or peer is None or not peer.added:
            lightest.append("")
        else:
            lightest.append(f"{ours.added / peer.added:.2f} ({LABELS[peer.variant]})")
        floors.append(
            "" if ours is None or ours.ratio_to_floor is None else f"{ours.ratio_to_floor:.2f}"
        )
    out.append("| ÷ the lightest peer's | " + " | ".join(lightest) + " |")
    out.append("| ÷ the floor's | " + " | ".join(floors) + " |")
    tool = [r for r in rows if r.workload == TOOL_WORKLOAD and r.per_call is not None]
    if tool:
        out += [
            "",
            "| `@tool` call | instructions per call | added over the bare function "
            "| added ÷ the floor's |",
            "|---|---:|---:|---:|",
        ]
        names = {
            "bare": "bare function",
            "floor": "floor: span + the same metric points",
            "otel-agents": "@tool, no agent run",
            "otel-agents-run": "@tool inside an agent run",
        }
        for r in tool:
            added = "" if r.added is None else f"{r.added / 1e3:,.1f}k"
            rat = "" if r.ratio_to_floor is None else f"{r.ratio_to_floor:.2f}x"
            per_call = (r.per_call or 0) / 1e3
            out.append(f"| {names[r.variant]} | {per_call:,.1f}k | {added} | {rat} |")
    out += [
        "",
        f"Measured with `{calls}`: whole process under callgrind (every thread, the metric "
        "collection included), (Ir(N2 calls) - Ir(N1 calls)) / (N2 - N1). Versions: "
        + ", ".join(f"{k} {v}" for k, v in found.items())
        + ".",
    ]
    return out


def write_between_markers(path: Path, lines: Sequence[str]) -> None:
    """Replace what lies between README_START and README_END in `path` with `lines`."""
    text = path.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise SystemExit(f"{path}: no {README_START!r} ... {README_END!r} block")
    head = text[: start + len(README_START)]
    path.write_text(head + "\n" + "\n".join(lines) + "\n" + text[end:])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(BASE_VARIANTS))
    parser.add_argument("--calls", default="20,120", help="N1,N2 (default 20,120)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--all", action="store_true", help="every variant: otel-agents' and the peers'"
    )
    parser.add_argument("--jobs", type=int, default=2, help="processes at once (default 2)")
    parser.add_argument(
        "--readme",
        type=Path,
        help="write the summary tables into this file, between its "
        f"{README_START!r} and {README_END!r} lines",
    )
    parser.add_argument("--json", type=Path, help="write the rows and versions here")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.all:
        options.variants = list(VARIANTS)

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
    pairs = [(w, v) for w in options.workloads for v in variants if applies(w, v)]
    with (
        tempfile.TemporaryDirectory(prefix="callgrind-") as tmp,
        ThreadPoolExecutor(max_workers=options.jobs) as pool,
    ):
        measured = list(
            pool.map(lambda p: measure(p[0], p[1], options.warmup, n1, n2, Path(tmp)), pairs)
        )
    rows = [row for row, _ in measured]
    located = {where for _, where in measured if where}
    for workload in options.workloads:
        mine = [r for r in rows if r.workload == workload]
        bare = next((r.per_call for r in mine if r.variant == "bare"), None)
        for row in mine:
            if row.per_call is not None and bare is not None and row.variant != "bare":
                row.added = row.per_call - bare
        floor = next((r.added for r in mine if r.variant == "floor"), None)
        for row in mine:
            if row.variant not in ("bare", "floor"):
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
    if options.readme:
        command = "python benchmarks/callgrind.py " + " ".join(argv or sys.argv[1:])
        tables = summary_tables(rows, found, command)
        write_between_markers(options.readme, tables)
        print("\n".join(["", *tables]))
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
