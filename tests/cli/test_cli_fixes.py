"""`audit verify --run`, detector names, `show TRACE_ID` outside any agent, `--wide`, time
zones and singular counts."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from clitools import StoryStore, clean_env, cli, copy_store

ONE_RUN_AND_LOOSE_TOOLS = """
    import otel_agents
    from opentelemetry import trace
    otel_agents.instrument()

    @otel_agents.tool
    def lookup_vendor_record_with_a_rather_long_name(vendor_id: str) -> str:
        return f"vendor {vendor_id} is verified and has a long, descriptive status line"

    with otel_agents.agent("intake"):
        lookup_vendor_record_with_a_rather_long_name("V-1")
    with trace.get_tracer("app").start_as_current_span("nightly job") as job:
        lookup_vendor_record_with_a_rather_long_name("V-2")  # no agent: no run
        print(format(job.get_span_context().trace_id, "032x"))
"""


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One run, and one trace of tool calls made outside any agent (its trace id)."""
    path = tmp_path_factory.mktemp("small") / "traces.db"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(ONE_RUN_AND_LOOSE_TOOLS)],
        env=clean_env(path, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_ONLY"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return path, done.stdout.strip()


# -- audit verify --run ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [("audit", "verify", "--run", "latest"), ("audit", "--run", "latest", "verify")],
)
def test_verify_takes_a_run_either_side_of_the_action(story: StoryStore, args: tuple[str]) -> None:
    result = cli(story.path, *args)
    assert result.code == 0, result.err
    assert "audit log intact" in result.out
    assert f"run {story.crashed_run[:8]}: " in result.out and "records intact" in result.out


def test_verify_says_when_a_runs_records_are_not_proven(story: StoryStore, tmp_path: Path) -> None:
    store = copy_store(story.path, tmp_path)
    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE audit SET tool = 'forged' WHERE seq = 2")
    result = cli(store, "audit", "verify", "--run", story.ok_run[:8])
    assert result.code == 1
    assert f"run {story.ok_run[:8]}: its records are not proven intact" in result.out
    document = cli(store, "audit", "verify", "--run", story.ok_run, "--json").json()
    assert document["run"]["run_id"] == story.ok_run and document["run"]["intact"] is False


def test_verify_refuses_filters_it_cannot_apply(story: StoryStore) -> None:
    result = cli(story.path, "audit", "--tool", "create_account", "verify")
    assert result.code == 2
    assert "--tool cannot apply (only --run and --json)" in result.err


# -- alerts --detector -----------------------------------------------------------------------


def test_an_unknown_detector_names_the_valid_ones(story: StoryStore) -> None:
    result = cli(story.path, "alerts", "--detector", "nosuch")
    assert result.code == 2
    assert "'nosuch' is not a detector" in result.err
    for name in ("retry_loop", "cost_spike", "handoff_ping_pong", "silent_tool_failure"):
        assert name in result.err


# -- show TRACE_ID -----------------------------------------------------------------------------


def test_show_finds_tool_calls_made_outside_an_agent_by_trace_id(
    small_store: tuple[Path, str],
) -> None:
    path, trace_id = small_store
    for ref in (trace_id, trace_id[:10]):
        result = cli(path, "show", ref, "--full", TZ="UTC")
        assert result.code == 0, result.err
        assert result.out.startswith(f"trace {trace_id}\n")
        assert "no agent run" in result.out
        assert "lookup_vendor_record_with_a_rather_long_name" in result.out
        assert "V-2" in result.out
    document = cli(path, "show", trace_id[:10], "--json").json()
    assert document["trace_id"] == trace_id and document["run"] is None
    assert cli(path, "show", "ffffffffff").code == 1  # still an error when nothing matches


# -- widths, zones, plurals -------------------------------------------------------------------


def test_wide_output_cuts_and_drops_nothing(small_store: tuple[Path, str]) -> None:
    path, _ = small_store
    narrow = cli(path, "runs", COLUMNS="50", TZ="UTC")
    wide = cli(path, "runs", "--wide", COLUMNS="50", TZ="UTC")
    assert narrow.code == wide.code == 0
    assert max(len(line) for line in narrow.out.splitlines()) <= 50
    assert wide.out.splitlines()[0].split()[:3] == ["RUN", "STARTED(UTC)", "AGENT"]
    assert max(len(line) for line in wide.out.splitlines()) > 50
    assert "DURATION" in wide.out and "DURATION" not in narrow.out
    assert cli(path, "-w", "runs", COLUMNS="50", TZ="UTC").out == wide.out  # before the command


@pytest.mark.parametrize(("zone", "name"), [("UTC", "UTC"), ("Asia/Tokyo", "JST")])
def test_times_say_their_zone(small_store: tuple[Path, str], zone: str, name: str) -> None:
    path, _ = small_store
    shown = cli(path, "show", TZ=zone)
    assert shown.code == 0, shown.err
    started = shown.out.splitlines()[1]
    assert f" {name}" in started and "started " in started
    assert f"STARTED({name})" in cli(path, "runs", "--wide", TZ=zone).out.splitlines()[0]
    info = cli(path, "store", TZ=zone).out
    assert info.count(f" {name}") == 2  # from ... to ...


def test_counts_of_one_are_singular(small_store: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = small_store
    info = cli(path, "store").out
    assert "holds  1 run, 4 spans, 2 audit records, 0 detector findings" in info
    exported = cli(path, "audit", "--run", "latest", "-o", str(tmp_path / "one.jsonl"))
    assert f"wrote 1 audit record to {tmp_path / 'one.jsonl'}" in exported.err
    verified = cli(path, "audit", "verify", "--run", "latest").out
    assert ": 1 record intact (the chain verifies through record 1)" in verified


# -- the demo's help, and the first-run note -----------------------------------------------------


def test_the_demo_help_uses_the_port_of_the_default_protocol() -> None:
    import re

    from otel_agents.sdk_setup import _protocol

    ports = {"http/protobuf": "4318", "grpc": "4317"}
    shown = re.findall(
        r"OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:(\d+)", cli(None, "demo", "--help").out
    )
    assert shown == [ports[_protocol({}, "TRACES")]]


def test_the_demo_says_where_its_run_went_without_the_first_run_note(tmp_path: Path) -> None:
    from otel_agents.store.exporter import WHERE_SPANS_GO

    store = tmp_path / "new" / "traces.db"
    result = cli(store, "demo")
    assert result.code == 0, result.err
    assert f"(stored in {store})" in result.out
    assert WHERE_SPANS_GO not in result.out + result.err


def test_verify_of_a_run_without_tool_calls_follows_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    code = (
        "import otel_agents\notel_agents.instrument()\nwith otel_agents.agent('idle'):\n    pass\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=clean_env(path), capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = cli(path, "audit", "verify", "--run", "latest")
    assert result.code == 0, result.out + result.err
    assert "has no audit records" in result.out
