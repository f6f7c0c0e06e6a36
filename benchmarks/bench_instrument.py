"""Measure what `otel_agents.instrument()` costs at start-up, on top of the SDK's own set-up.

    python benchmarks/bench_instrument.py [--repeat 7]

Each sample is a fresh interpreter (imports are what start-up costs, and a module is
imported once per process). Variants:

- `sdk`: the baseline, the OpenTelemetry SDK set up by hand as an application would:
  `TracerProvider` with a `BatchSpanProcessor`, `MeterProvider` with a periodic reader,
  both registered globally;
- `instrument(app providers)`: that baseline, then `otel_agents.instrument()` using them;
- `instrument()`: `import otel_agents; otel_agents.instrument()` setting the SDK up itself
  (local store off, so that no database file is created: the store opens lazily anyway);
- `instrument(policy)`: as `instrument(app providers)` with the example policy
  (`examples/policies/vendor-onboarding.yaml`), to show what a configured policy costs.

For each: CPU time of the measured code on the application's thread (best of `--repeat`,
`time.thread_time` in a run without tracemalloc; the whole process's CPU meanwhile beside
it, which includes the price table's loader thread), the peak of traced allocations
(tracemalloc, in a separate run) and the modules it imported. The table gives each
variant and its cost above `sdk`.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

_SDK = """
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
tp = TracerProvider()
tp.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
mp = MeterProvider(metric_readers=[InMemoryMetricReader()])
trace.set_tracer_provider(tp)
metrics.set_meter_provider(mp)
"""

_POLICY = str(Path(__file__).resolve().parent.parent / "examples/policies/vendor-onboarding.yaml")

VARIANTS: dict[str, str] = {
    "sdk": _SDK,
    "instrument(app providers)": _SDK
    + "import otel_agents\notel_agents.instrument(tracer_provider=tp, meter_provider=mp)\n",
    "instrument()": "import otel_agents\notel_agents.instrument()\n",
    "instrument(policy)": _SDK
    + "import otel_agents\n"
    + f"otel_agents.instrument(tracer_provider=tp, meter_provider=mp, policy={_POLICY!r})\n",
}

_HARNESS = """
import json, sys, time
trace_memory = sys.argv[1] == "memory"
before = set(sys.modules)
if trace_memory:
    import tracemalloc
    tracemalloc.start()
start, start_process = time.thread_time(), time.process_time()
exec(compile(sys.argv[2], "<variant>", "exec"), {})
cpu, process = time.thread_time() - start, time.process_time() - start_process
peak = tracemalloc.get_traced_memory()[1] if trace_memory else 0
modules = len(set(sys.modules) - before)
print(json.dumps({"cpu": cpu, "process": process, "peak": peak, "modules": modules}))
"""


def sample(code: str, mode: str) -> dict[str, float]:
    env = {**os.environ, "OTEL_AGENTS_STORE": "off", "OTEL_TRACES_EXPORTER": "none"}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    out = subprocess.run(
        [sys.executable, "-c", _HARNESS, mode, textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def measure(code: str, repeat: int) -> tuple[float, float, float, float]:
    """(best CPU seconds of the application's thread, best tracemalloc peak in bytes,
    modules imported, best CPU seconds of the whole process meanwhile)."""
    cpu = [sample(code, "time") for _ in range(repeat)]
    memory = [sample(code, "memory") for _ in range(repeat)]
    return (
        min(s["cpu"] for s in cpu),
        min(s["peak"] for s in memory),
        min(s["modules"] for s in cpu),
        min(s["process"] for s in cpu),
    )


def otel_agents_dir() -> str:
    """Where the measured processes import otel_agents from (without importing it here)."""
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import importlib.util as u; print(u.find_spec('otel_agents').origin)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return str(Path(found).parent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="fresh processes per variant")
    args = parser.parse_args()
    # Byte-code compiled first, as an installed package is (pip compiles it): with
    # PYTHONDONTWRITEBYTECODE set, every sample would otherwise compile our modules again.
    compileall.compile_dir(str(Path(otel_agents_dir())), quiet=1)
    results = {name: measure(code, args.repeat) for name, code in VARIANTS.items()}
    base_cpu, base_peak, base_modules, base_process = results["sdk"]
    print(f"best of {args.repeat} fresh processes each")
    print("(CPU: the application's thread; process: all threads meanwhile, the price table's")
    print("loader included, which instrument() starts on a thread of its own)\n")
    print(
        "| variant | CPU ms | above sdk | process CPU ms | above sdk | peak MB | above sdk "
        "| modules | above sdk |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, (cpu, peak, modules, process) in results.items():
        print(
            f"| {name} | {cpu * 1000:.1f} | {(cpu - base_cpu) * 1000:+.1f} "
            f"| {process * 1000:.1f} | {(process - base_process) * 1000:+.1f} "
            f"| {peak / 1e6:.2f} | {(peak - base_peak) / 1e6:+.2f} "
            f"| {modules:.0f} | {modules - base_modules:+.0f} |"
        )


if __name__ == "__main__":
    main()
