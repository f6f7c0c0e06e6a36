"""Help with examples everywhere, and clear errors with the right exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from clitools import StoryStore, clean_env, cli


@pytest.mark.parametrize("command", ["runs", "show", "audit", "alerts"])
def test_every_command_has_help_with_examples(command: str) -> None:
    result = cli(None, command, "--help", script=True)
    assert result.code == 0, result.err
    assert result.out.startswith(f"usage: otel-agents {command}")
    assert (
        "examples:" in result.out and f"otel-agents {command}" in result.out.split("examples:")[1]
    )


def test_the_top_level_help_lists_commands_examples_and_the_store(tmp_path: Path) -> None:
    store = tmp_path / "where.db"
    for args in ([], ["--help"]):
        result = cli(store, *args)
        assert result.code == 0
        for command in ("runs", "show", "audit", "alerts", "store"):
            assert f"\n    {command} " in result.out
        assert "examples:" in result.out and f"The store: {store}" in result.out
    assert cli(None, "audit", "verify", "--help").code == 0
    assert cli(None, "--version").out.startswith("otel-agents ")


def test_unknown_commands_and_options_are_usage_errors() -> None:
    result = cli(None, "rnus")
    assert result.code == 2 and "invalid choice: 'rnus'" in result.err
    result = cli(None, "runs", "--colour", "red")
    assert result.code == 2 and "unrecognized arguments" in result.err
    assert cli(None, "show", "a", "b").code == 2  # one RUN at most


def test_the_store_option_goes_before_or_after_the_command(story: StoryStore) -> None:
    elsewhere = {"OTEL_AGENTS_STORE_PATH": "/nonexistent/elsewhere.db"}
    before = cli(None, "--store", str(story.path), "runs", "--json", **elsewhere)
    after = cli(None, "runs", "--json", "--store", str(story.path), **elsewhere)
    assert before.code == after.code == 0, before.err + after.err
    assert before.out == after.out and len(before.json()) == 2
    assert cli(None, "runs", **elsewhere).code == 1


def test_a_corrupt_store_is_reported_not_a_traceback(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    store.write_bytes(os.urandom(8192))
    for args in (["runs"], ["show", "abcd1234"], ["audit", "verify"], ["alerts"]):
        result = cli(store, *args)
        assert result.code == 1, args
        assert "Traceback" not in result.err
        assert f"the trace store {store} is damaged or not a store" in result.err


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    result = cli(tmp_path, "runs")
    assert result.code == 1 and "is a directory" in result.err


def test_store_says_where_the_store_is_and_what_it_holds(story: StoryStore, tmp_path: Path) -> None:
    result = cli(story.path, "store")
    assert result.code == 0, result.err
    assert f"store  {story.path}" in result.out
    assert "2 runs" in result.out and "16 audit records" in result.out
    info = cli(story.path, "store", "--json").json()
    assert (info["runs"], info["audit_records"], info["exists"]) == (2, 16, True)
    missing = cli(tmp_path / "new.db", "store")
    assert missing.code == 0 and "nothing has been recorded there yet" in missing.out


def test_output_into_a_closed_pipe_is_quiet(story: StoryStore) -> None:
    shell = f"{sys.executable} -m otel_agents.cli audit | head -n 1"
    for _ in range(3):
        shell = f"{shell}; {sys.executable} -m otel_agents.cli audit | head -c 10"
    result = subprocess.run(
        ["sh", "-c", shell], env=clean_env(story.path), capture_output=True, text=True
    )
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
