"""A run killed with SIGKILL still tells its story: the store records span starts (in the
background), so `otel-agents runs` and `show` give the run's agents, the tool calls already
done and the one in flight, with a clear "did not finish" state."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from storetools import clean_env, read, store_provider

from otel_agents.store.reader import RunFilter

APP = """
    import sys, threading
    import otel_agents

    otel_agents.instrument()

    @otel_agents.tool
    def lookup_vendor(vendor_id: str) -> dict:
        return {"vendor_id": vendor_id, "name": "Acme Robotics GmbH"}

    @otel_agents.tool
    def create_account(vendor_id: str, plan: str) -> str:
        print("in flight", flush=True)
        threading.Event().wait()  # hangs until the process is killed

    with otel_agents.agent("vendor-onboarding"):
        with otel_agents.agent("provisioning"):
            lookup_vendor("V-1042-SECRET-ID")
            create_account("V-1042-SECRET-ID", plan="enterprise")
"""


def _stored(path: Path, table: str, name: str) -> bool:
    """Whether the child has written span `name` into `table` (spans or open_spans)."""
    if not path.exists():
        return False
    try:
        with sqlite3.connect(path) as conn:
            row = conn.execute(f"SELECT count(*) FROM {table} WHERE name = ?", (name,)).fetchone()
    except sqlite3.Error:  # not created yet
        return False
    return bool(row[0])


def _wait_for(condition: Any, what: str, limit: float = 60.0) -> None:
    """Poll a condition the child makes true; the limit only guards a broken child."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def killed_run(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "traces.db"
    env = clean_env(OTEL_AGENTS_STORE_PATH=str(path), OTEL_BSP_SCHEDULE_DELAY="100")
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(APP)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "in flight"
        # Both writers run in the background: wait for what each must have written.
        _wait_for(
            lambda: _stored(path, "open_spans", "execute_tool create_account"),
            "the tool call in flight, recorded as open",
        )
        _wait_for(
            lambda: _stored(path, "spans", "execute_tool lookup_vendor"),
            "the finished tool call, exported",
        )
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    yield path


def cli(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(OTEL_AGENTS_STORE_PATH=str(path), COLUMNS="100")
    result = subprocess.run(
        [sys.executable, "-m", "otel_agents.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result


def _nodes(tree: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield tree
    for child in tree.get("children", ()):
        yield from _nodes(child)


def test_a_killed_run_is_listed_by_its_agent_as_did_not_finish(killed_run: Path) -> None:
    [run] = json.loads(cli(killed_run, "runs", "--json").stdout)
    assert run["agent"] == "vendor-onboarding"
    assert run["status"] == "incomplete"
    assert run["process_alive"] is False and run["open_spans"] == 3
    # Its root never reported the run's totals: they are counted from the spans it wrote.
    assert (run["tool_calls"], run["llm_calls"], run["retries"]) == (1, 0, 0)
    incomplete = json.loads(cli(killed_run, "runs", "--status", "incomplete", "--json").stdout)
    assert [r["run_id"] for r in incomplete] == [run["run_id"]]
    assert json.loads(cli(killed_run, "runs", "--status", "running", "--json").stdout) == []


def test_show_gives_the_tree_with_the_tool_call_in_flight(killed_run: Path) -> None:
    shown = json.loads(cli(killed_run, "show", "--json").stdout)
    [root] = shown["path"]
    assert (root["kind"], root["title"], root["status"]) == ("agent", "vendor-onboarding", "open")
    [inner] = root["children"]
    assert (inner["title"], inner.get("open")) == ("provisioning", True)
    done, in_flight = inner["children"]  # tool calls sit under their agent
    assert (done["title"], done["status"], done.get("open")) == ("lookup_vendor", "unset", None)
    assert (in_flight["title"], in_flight["status"]) == ("create_account", "open")
    assert in_flight["arguments_summary"] == "dict with 2 keys: vendor_id, plan"
    assert in_flight["arguments"] is None  # content capture is off: no values
    text = cli(killed_run, "show").stdout
    assert "did not finish: its process is gone (killed or crashed)" in text
    assert "create_account … in flight" in text
    assert "args     dict with 2 keys: vendor_id, plan" in text
    assert "SECRET" not in text and "SECRET" not in json.dumps(shown)
    print(text)  # the view users get, for the record (pytest -s)


def test_a_run_in_progress_is_running_and_its_ended_spans_replace_the_open_ones(
    tmp_path: Path,
) -> None:
    import otel_agents

    path = tmp_path / "traces.db"
    provider, processor = store_provider(path, schedule_delay_millis=60_000)
    otel_agents.instrument(tracer_provider=provider, configure_sdk=False, detectors=False)
    try:
        with otel_agents.agent("long-runner") as run:
            processor._starts.flush()  # what the background thread does after its delay
            with read(path) as store:
                [summary] = store.runs(RunFilter())
                assert (summary.agent, summary.status) == ("long-runner", "running")
                assert summary.process_alive is True and summary.open_spans == 1
            run_id = run.run_id
        provider.force_flush()
        with read(path) as store:
            summary = store.run(str(run_id))
            assert (summary.status, summary.open_spans) == ("ok", 0)
            assert [s.open for s in store.run_spans(str(run_id))] == [False]
    finally:
        otel_agents.uninstrument()
        provider.shutdown()


def test_spans_that_ended_before_the_writer_looked_cost_no_write(tmp_path: Path) -> None:
    import otel_agents

    path = tmp_path / "traces.db"
    provider, processor = store_provider(path, schedule_delay_millis=60_000)
    otel_agents.instrument(tracer_provider=provider, configure_sdk=False, detectors=False)
    try:
        with otel_agents.agent("quick"):
            pass
        processor._starts.flush()
        assert processor._starts.written == 0
    finally:
        otel_agents.uninstrument()
        provider.shutdown()


def test_a_store_of_the_previous_version_is_upgraded_and_still_read(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    conn = sqlite3.connect(path)
    from otel_agents.store import schema

    script = schema._TABLES.split("CREATE TABLE IF NOT EXISTS open_spans")[0]
    conn.executescript(script + "PRAGMA user_version = 1;")
    conn.close()
    with read(path) as store:  # the CLI reads it as it is
        assert store.runs() == []
    schema.connect(path, create=True).close()  # a writer upgrades it
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM open_spans").fetchone()[0] == 0
    assert os.path.exists(path)


def test_a_version_2_store_gains_run_denials_and_is_read_without_them(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    from otel_agents.store import schema

    runs_v2 = schema._TABLES.replace(",\n    denials INTEGER NOT NULL DEFAULT 0", "")
    assert runs_v2 != schema._TABLES
    conn = sqlite3.connect(path)
    conn.executescript(runs_v2 + "PRAGMA user_version = 2;")
    conn.execute(
        "INSERT INTO runs (run_id, trace_id, start_ns, end_ns, finished, status, retries)"
        " VALUES ('r1', 't1', 1, 2, 1, 'ok', 3)"
    )
    conn.commit()
    conn.close()
    with read(path) as store:  # the CLI reads it as it is: no denials recorded then
        [run] = store.runs()
        assert (run.retries, run.denials) == (3, 0)
    schema.connect(path, create=True).close()  # a writer upgrades it
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        assert conn.execute("SELECT denials FROM runs").fetchall() == [(0,)]
    with read(path) as store:
        assert store.run("r1").retries == 3
