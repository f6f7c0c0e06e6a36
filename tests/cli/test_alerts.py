"""`otel-agents alerts`: detector findings across runs."""

from __future__ import annotations

from pathlib import Path

from clitools import StoryStore, cli, run_program


def test_findings_across_runs_newest_first(story: StoryStore) -> None:
    result = cli(story.path, "alerts", "--json")
    assert result.code == 0, result.err
    alerts = result.json()
    assert [a["run_id"] for a in alerts] == [story.crashed_run] * 2 + [story.ok_run] * 2
    assert [a["time"] for a in alerts] == sorted((a["time"] for a in alerts), reverse=True)
    by_detector = {a["detector"]: a for a in alerts if a["run_id"] == story.ok_run}
    retry = by_detector["retry_loop"]
    assert retry["span_name"] == "execute_tool verify_bank_account"
    assert (retry["observed"], retry["threshold"]) == (3.0, 3.0)
    assert retry["agent"] == "vendor-onboarding"
    spike = by_detector["cost_spike"]
    assert spike["span_name"] == "chat gpt-4.1-mini" and spike["observed"] > spike["threshold"]


def test_the_table_and_its_filters(story: StoryStore) -> None:
    table = cli(story.path, "alerts", COLUMNS="160", TZ="UTC")
    assert table.code == 0, table.err
    header, *rows = table.out.splitlines()
    assert header.split() == ["TIME(UTC)", "RUN", "AGENT", "DETECTOR", "WHERE", "FINDING"]
    assert len(rows) == 4
    assert "verify_bank_account failed 3 times with identical arguments" in table.out
    narrow = cli(story.path, "alerts", COLUMNS="70")
    assert all(len(line) <= 70 for line in narrow.out.splitlines()), narrow.out
    retry = cli(story.path, "alerts", "--detector", "retry_loop", "--json").json()
    assert {a["detector"] for a in retry} == {"retry_loop"} and len(retry) == 2
    one_run = cli(story.path, "alerts", "--run", story.crashed_run[:8], "--json").json()
    assert {a["run_id"] for a in one_run} == {story.crashed_run}
    by_agent = cli(story.path, "alerts", "--agent", "nightly-import", "--json").json()
    assert {a["run_id"] for a in by_agent} == {story.crashed_run}
    assert cli(story.path, "alerts", "-n", "1", "--json").json() == [
        cli(story.path, "alerts", "--json").json()[0]
    ]


def test_a_store_without_findings(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    run_program(store, "--agent", "calm")
    result = cli(store, "alerts", "--detector", "handoff_ping_pong")
    assert result.code == 0 and result.out.strip() == "No detector findings match."
