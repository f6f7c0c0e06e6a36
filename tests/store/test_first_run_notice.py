"""A newcomer's first run without a backend says, once, where its spans went."""

from __future__ import annotations

from pathlib import Path

from storetools import run_python

from otel_agents.store.exporter import WHERE_SPANS_GO

APP = """
    import otel_agents
    otel_agents.instrument()

    @otel_agents.tool
    def hello() -> str:
        return "hi"

    with otel_agents.agent("first"):
        hello()
"""


def test_the_first_run_says_where_the_spans_went_and_later_runs_stay_quiet(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fresh" / "traces.db"
    first = run_python(APP, OTEL_AGENTS_STORE_PATH=str(path))
    notes = [line for line in first.stderr.splitlines() if line.startswith(WHERE_SPANS_GO)]
    assert notes == [
        f"{WHERE_SPANS_GO} {path}: `otel-agents runs` lists the runs, `otel-agents show` the"
        " newest one's decision path. (Set OTEL_EXPORTER_OTLP_ENDPOINT to send them to a"
        " backend; this note is shown once, when the store is created.)"
    ]
    second = run_python(APP, OTEL_AGENTS_STORE_PATH=str(path))
    assert second.stderr == ""
