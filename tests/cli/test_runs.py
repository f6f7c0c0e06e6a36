"""`otel-agents runs`: recent runs, newest first, with totals and filters."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from clitools import StoryStore, clean_env, cli, run_program

# What the onboarding story does (see programs/onboarding.py): 10 model turns (3 for intake,
# 7 for provisioning), 8 tool calls of which 2 repeat an earlier call, 2 handoffs, and one
# finding each from the retry-loop and the cost-spike detector.
STORY_LLM_CALLS, STORY_TOOL_CALLS, STORY_RETRIES, STORY_HANDOFFS, STORY_ANOMALIES = 10, 8, 2, 2, 2


def test_runs_are_listed_newest_first_with_their_totals(story: StoryStore) -> None:
    result = cli(story.path, "runs", "--json", script=True)  # the installed command
    assert result.code == 0, result.err
    runs = result.json()
    assert [r["run_id"] for r in runs] == [story.crashed_run, story.ok_run]
    crashed, ok = runs
    assert (ok["agent"], ok["status"]) == ("vendor-onboarding", "ok")
    assert (crashed["agent"], crashed["status"]) == ("nightly-import", "error")
    assert "onboarding aborted by the operator" in crashed["error"]
    for run in runs:
        assert run["llm_calls"] == STORY_LLM_CALLS
        assert run["tool_calls"] == STORY_TOOL_CALLS
        assert run["retries"] == STORY_RETRIES
        assert run["handoffs"] == STORY_HANDOFFS
        assert run["anomalies"] == STORY_ANOMALIES
        assert run["duration_ms"] > 0 and run["start"] < run["end"]


def test_run_totals_agree_with_the_spans_of_the_run(story: StoryStore) -> None:
    [run] = cli(story.path, "runs", "--agent", "vendor-onboarding", "--json").json()
    tree = cli(story.path, "show", story.ok_run, "--json").json()
    llm_nodes = [n for n in _walk(tree["path"]) if n["kind"] == "llm"]
    assert len(llm_nodes) == run["llm_calls"]
    assert abs(sum(n["cost_usd"] for n in llm_nodes) - run["cost_usd"]) < 1e-9
    assert sum(n["input_tokens"] for n in llm_nodes) == run["input_tokens"]
    assert sum(n["output_tokens"] for n in llm_nodes) == run["output_tokens"]


def test_the_table_fits_the_terminal(story: StoryStore) -> None:
    for width in (60, 80, 160):
        result = cli(story.path, "runs", COLUMNS=str(width))
        assert result.code == 0, result.err
        lines = result.out.splitlines()
        assert lines[0].split()[:2] == ["RUN", "STARTED"] or lines[0].startswith("RUN")
        assert all(len(line) <= width for line in lines), (width, result.out)
        assert story.ok_run[:8] in result.out and story.crashed_run[:8] in result.out
        assert "COST" in lines[0] and "STATUS" in lines[0]
    wide = cli(story.path, "runs", COLUMNS="160").out
    assert "vendor-onboarding" in wide and "ANOMALIES" in wide


def test_filters(story: StoryStore) -> None:
    def ids(*args: str) -> list[str]:
        result = cli(story.path, "runs", "--json", *args)
        assert result.code == 0, result.err
        return [r["run_id"] for r in result.json()]

    assert ids("--status", "error") == [story.crashed_run]
    assert ids("--status", "ok") == [story.ok_run]
    assert ids("--agent", "vendor-onboarding") == [story.ok_run]
    assert ids("--anomalies") == [story.crashed_run, story.ok_run]
    assert ids("--since", "1h") == [story.crashed_run, story.ok_run]
    assert ids("--until", "1h") == []
    assert ids("-n", "1") == [story.crashed_run]
    assert ids("--status", "running") == []
    empty = cli(story.path, "runs", "--since", "2999-01-01")
    assert empty.code == 0 and "No runs match" in empty.out


def test_a_bad_filter_is_a_usage_error(story: StoryStore) -> None:
    result = cli(story.path, "runs", "--since", "last tuesday")
    assert result.code == 2
    assert "--since" in result.err and "'last tuesday' is not a time" in result.err
    result = cli(story.path, "runs", "--status", "exploded")
    assert result.code == 2 and "invalid choice: 'exploded'" in result.err
    result = cli(story.path, "runs", "-n", "0")
    assert result.code == 2 and "must be 1 or more" in result.err


def test_without_a_store_the_error_says_what_to_do(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here.db"
    result = cli(missing, "runs")
    assert result.code == 1
    assert f"no trace store at {missing}" in result.err
    assert "otel_agents.instrument()" in result.err
    assert not missing.exists(), "reading must not create a store"


def test_a_run_whose_process_died_shows_what_it_did(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    program = tmp_path / "dies.py"
    program.write_text(
        textwrap.dedent(
            """
            import os
            import otel_agents
            otel_agents.instrument()

            @otel_agents.tool
            def step(i: int) -> int:
                return i

            with otel_agents.agent("doomed") as run:
                print(run.run_id, flush=True)
                step(1)
                step(1)
                with otel_agents.agent("helper"):
                    step(2)
                otel_agents.flush()
                os._exit(0)  # killed before the run's root span could end
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(program)], env=clean_env(store), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    [run] = cli(store, "runs", "--json").json()
    assert run["run_id"] == result.stdout.strip()
    assert run["status"] == "running"  # no root span; active in the last ten minutes
    assert (run["tool_calls"], run["retries"]) == (3, 1)
    assert cli(store, "runs", "--status", "running", "--json").json()[0]["run_id"] == run["run_id"]


def test_more_runs_than_the_limit_say_so(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    ran = run_program(store, "--runs", "3")
    result = cli(store, "runs", "-n", "2")
    assert result.code == 0
    assert ran[2][:8] in result.out and ran[1][:8] in result.out and ran[0][:8] not in result.out
    assert "--all for more" in result.out
    assert len(cli(store, "runs", "--all", "--json").json()) == 3


def _walk(nodes: list[dict[str, object]]) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for node in nodes:
        found.append(node)
        found.extend(_walk(node["children"]))  # type: ignore[arg-type]
    return found
