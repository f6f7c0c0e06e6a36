"""`benchmarks/callgrind.py`: reading a callgrind out file and the per-call arithmetic.

A tiny synthetic out file; valgrind is never run here.
"""

from __future__ import annotations

import importlib.util
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
