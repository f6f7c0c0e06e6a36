"""`benchmarks/callgrind.py`: reading a callgrind out file and the per-call arithmetic.

A tiny synthetic out file; valgrind is never run here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "callgrind.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_callgrind", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


callgrind = _load()

OUT_FILE = """\
# callgrind format
version: 1
creator: callgrind-3.22.0
pid: 4242
cmd:  python benchmarks/callgrind.py --child tool-call bare 20 20
part: 1

desc: I1 cache:
positions: line
events: Ir
summary: {summary}

fl=(1) main.c
fn=(1) main
16 20
cfn=(2) work
calls=1 16
16 400

fn=(2) work
3 400

totals: {totals}
"""


def out_file(total: int, *, summary: int | None = None) -> str:
    return OUT_FILE.format(totals=total, summary=total if summary is None else summary)


def test_reads_the_totals_line() -> None:
    assert callgrind.parse_ir(out_file(1_234_567)) == 1_234_567


def test_prefers_totals_over_summary() -> None:
    assert callgrind.parse_ir(out_file(900, summary=800)) == 900


def test_falls_back_to_summary() -> None:
    text = out_file(1000).replace("totals: 1000\n", "")
    assert callgrind.parse_ir(text) == 1000


def test_several_events_take_the_first_column() -> None:
    text = (
        out_file(5)
        .replace("events: Ir", "events: Ir Dr Dw")
        .replace("totals: 5", "totals: 5000 70 80")
    )
    assert callgrind.parse_ir(text) == 5000


def test_rejects_a_file_without_a_count() -> None:
    with pytest.raises(ValueError):
        callgrind.parse_ir("events: Ir\nfn=(1) main\n1 2\n")


def test_rejects_a_file_that_does_not_count_ir_first() -> None:
    with pytest.raises(ValueError):
        callgrind.parse_ir(out_file(10).replace("events: Ir", "events: Dr Ir"))


def test_start_up_and_warm_up_cancel_out() -> None:
    start_up, per = 50_000_000, 12_345
    ir1 = callgrind.parse_ir(out_file(start_up + 20 * per))
    ir2 = callgrind.parse_ir(out_file(start_up + 120 * per))
    assert callgrind.per_call(ir1, ir2, 20, 120) == per


def test_per_call_needs_more_calls_in_the_second_run() -> None:
    with pytest.raises(ValueError):
        callgrind.per_call(10, 20, 120, 20)


def test_ratio_to_the_floor() -> None:
    assert callgrind.ratio(3000.0, 1000.0) == 3.0
    assert callgrind.ratio(None, 1000.0) is None
    assert callgrind.ratio(3000.0, None) is None


POINTS_PER_CALL = """
import json, sys
sys.path.insert(0, sys.argv[1])
import bench_llm_clients as llm
import otel_agents
telemetry = llm.Telemetry.install()
otel_agents.instrument(
    tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider,
    configure_sdk=False, capture_content="NO_CONTENT",
)
found = {}
for spec in llm.WORKLOADS:
    client = llm.make_client(spec.sdk, spec.fixture)
    spec.call(client)
    telemetry.metric_reader.get_metrics_data()  # the first call's points (delta)
    spec.call(client)
    data = telemetry.metric_reader.get_metrics_data()
    found[spec.key] = sum(
        point.count
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
        if hasattr(point, "bucket_counts")
    )
print(json.dumps(found))
"""


def test_the_floor_records_as_many_histogram_points_as_otel_agents_per_call() -> None:
    """The floor's histogram points per call are otel-agents' (a fixture that changes its
    number of chunks changes both)."""
    done = subprocess.run(
        [sys.executable, "-c", POINTS_PER_CALL, str(SCRIPT.parent)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OTEL_AGENTS_STORE": "off"},
    )
    recorded = json.loads(done.stdout.strip().splitlines()[-1])
    for workload in callgrind.LLM_WORKLOADS:
        assert callgrind.FLOOR_POINTS[workload][0] == recorded[workload], workload


def test_the_readme_tables_compare_ours_with_the_lightest_peer_and_the_floor(
    tmp_path: Path,
) -> None:
    Row = callgrind.Row
    rows = [
        Row("openai-chat", "bare", per_call=7_000_000.0),
        Row("openai-chat", "floor", per_call=7_800_000.0, added=800_000.0),
        Row(
            "openai-chat", "otel-agents", per_call=7_600_000.0, added=600_000.0, ratio_to_floor=0.75
        ),
        Row("openai-chat", "openai-v2", per_call=8_200_000.0, added=1_200_000.0),
        Row("openai-chat", "openinference", per_call=9_000_000.0, added=2_000_000.0),
        Row("openai-chat", "openllmetry", error="failed: exit 1"),
    ]
    lines = callgrind.summary_tables(rows, {"python": "3.11"}, "python benchmarks/callgrind.py")
    text = "\n".join(lines)
    assert "| **otel-agents** | +600k |" in text
    assert "+1,200k (2.0x ours)" in text and "| OpenLLMetry | fails |" in text
    assert "| ÷ the lightest peer's | 0.50 (OpenTelemetry contrib openai-v2) |" in text
    assert "| ÷ the floor's | 0.75 |" in text
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{callgrind.README_START}\nold\n{callgrind.README_END}\nrest\n")
    callgrind.write_between_markers(readme, lines)
    written = readme.read_text()
    assert "old" not in written and written.startswith("intro\n") and written.endswith("rest\n")
    assert "+1,200k (2.0x ours)" in written
