"""`otel-agents show RUN`: the decision path of one run, for people and for machines."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from clitools import PROGRAMS, StoryStore, clean_env, cli, run_program

sys.path.insert(0, str(PROGRAMS))
import onboarding  # the story's constants: what it told the model to say

WIDE = {"COLUMNS": "220"}


def _walk(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for node in nodes:
        found.append(node)
        found.extend(_walk(node["children"]))
    return found


def _line_of(lines: list[str], needle: str, start: int = 0) -> int:
    for index in range(start, len(lines)):
        if needle in lines[index]:
            return index
    raise AssertionError(f"{needle!r} not found after line {start}:\n" + "\n".join(lines))


def _indent(line: str) -> int:
    """Where the node's label starts (after the tree's rails)."""
    match = re.search(r"(agent|llm|tool|approval|handoff) ", line)
    assert match, line
    return match.start()


def test_the_tree_tells_the_story(story: StoryStore) -> None:
    result = cli(story.path, "show", story.ok_run, **WIDE)
    assert result.code == 0, result.err
    out = result.out
    lines = out.splitlines()
    assert lines[0] == f"run {story.ok_run}"
    assert "vendor-onboarding · ok" in lines[1]
    # agents in order, handoffs between them: rejected first (with the failed check), then
    # accepted, with the receiving agent nested inside the accepted boundary
    intake = _line_of(lines, "agent    intake")
    rejected = _line_of(lines, "→ provisioning ✗ rejected", intake)
    assert "✗ has_tax_id: tax_id missing" in lines[rejected + 1]
    accepted = _line_of(lines, "→ provisioning ✓ accepted", rejected)
    provisioning = _line_of(lines, "agent    provisioning", accepted)
    assert _indent(lines[provisioning]) > _indent(lines[accepted])
    # each decision, then the tool call it led to, beneath it
    decision = _line_of(lines, "Before creating anything I must verify the bank account.")
    bank = _line_of(lines, "tool     verify_bank_account", decision)
    assert _indent(lines[bank]) > _indent(lines[decision - 1])
    assert '{"iban":"DE89370400440532013000"}' in lines[bank + 1]
    assert "TimeoutError: bank verification API timed out" in out
    # retries and the detector's finding on the third attempt
    third = _line_of(lines, "attempt 3")
    assert "! retry_loop" in lines[third]
    assert "finding  retry_loop: verify_bank_account failed 3 times" in out
    # the expensive decision: its reasoning, cost spike, the approval it needed
    expensive = _line_of(lines, "180,000→4,000 tok")
    assert "180,000→4,000 tok" in lines[expensive] and "! cost_spike" in lines[expensive]
    assert "thinks" in lines[expensive + 1]
    create = _line_of(lines, "tool     create_account", expensive)
    assert "require_approval" in lines[create]
    approval = _line_of(lines, "approval create_account", create)
    assert "approved  by alice@example.com  via slack" in lines[approval]
    # the denied grant, its rule and reason, and the allowed one after it
    denied = _line_of(lines, "tool     grant_permission ✗  deny")
    assert "deny by rule no-admin-grants: admin roles need a security review" in out
    _line_of(lines, "tool     grant_permission ✓  allow", denied)
    # cost along the way ends at the run's cost
    [run] = cli(story.path, "runs", "--agent", "vendor-onboarding", "--json").json()
    totals = [line for line in lines if "Σ $" in line]
    assert totals[-1].split("Σ ")[1].split()[0] == f"${run['cost_usd']:.3f}"


def test_json_nests_each_tool_call_under_the_decision_that_asked_for_it(
    story: StoryStore,
) -> None:
    result = cli(story.path, "show", story.ok_run, "--json")
    assert result.code == 0, result.err
    document = result.json()
    assert document["run"]["run_id"] == story.ok_run
    [root] = document["path"]
    assert (root["kind"], root["agent"]) == ("agent", "vendor-onboarding")
    assert root["run_totals"]["tool_calls"] == document["run"]["tool_calls"]
    nodes = _walk(document["path"])
    tools = [n for n in nodes if n["kind"] == "tool"]
    assert len(tools) == document["run"]["tool_calls"]
    for llm in (n for n in nodes if n["kind"] == "llm"):
        for child in llm["children"]:
            assert child["kind"] == "tool" and child["requested_by"] == llm["span_id"]
            assert child["tool"] in llm["requested_tools"]
            assert child["reasoning"] in (llm["text"], llm["reasoning"])
    assert all("requested_by" in tool for tool in tools)
    [create] = [t for t in tools if t["tool"] == "create_account"]
    assert create["reasoning"] == onboarding.LONG_REASONING
    assert create["reasoning_source"] == "thinking"
    [approval] = create["children"]
    assert (approval["approval_status"], approval["approver"]) == ("approved", "alice@example.com")
    handoffs = [n for n in nodes if n["kind"] == "handoff"]
    assert [h["accepted"] for h in handoffs] == [False, True]
    assert handoffs[0]["checks_failed"] == ["has_tax_id: tax_id missing"]
    findings = [f["detector"] for n in nodes for f in n.get("findings", [])]
    assert sorted(findings) == ["cost_spike", "retry_loop"]


def test_long_text_is_cut_to_the_terminal_and_full_shows_it(story: StoryStore) -> None:
    cut = cli(story.path, "show", story.ok_run, COLUMNS="80")
    assert cut.code == 0
    assert all(len(line) <= 80 for line in cut.out.splitlines()), cut.out
    assert "…" in cut.out and "--full shows it all" in cut.out
    assert onboarding.LONG_REASONING.strip() not in " ".join(cut.out.split())

    full = cli(story.path, "show", story.ok_run, "--full", COLUMNS="80")
    assert full.code == 0
    assert all(len(line) <= 80 for line in full.out.splitlines()), full.out
    words = " ".join(
        line.split("thinks", 1)[-1].strip(" │") for line in full.out.splitlines() if "│" in line
    )
    assert " ".join(onboarding.LONG_REASONING.split()) in " ".join(words.split())
    assert "--full shows it all" not in full.out


def test_colour_only_on_request_or_on_a_terminal(story: StoryStore) -> None:
    plain = cli(story.path, "show", story.ok_run)  # stdout is a pipe
    assert "\x1b[" not in plain.out
    forced = cli(story.path, "show", story.ok_run, "--color", "always")
    assert "\x1b[" in forced.out
    assert "\x1b[31m" in forced.out  # the denied call and the findings are red
    no_color = cli(story.path, "--color", "auto", "show", story.ok_run, NO_COLOR="1")
    assert "\x1b[" not in no_color.out
    # the same lines, colour aside
    assert re.sub(r"\x1b\[[0-9;]*m", "", forced.out) == plain.out


def test_colour_on_a_real_terminal_unless_no_color(story: StoryStore, tmp_path: Path) -> None:
    pytest.importorskip("pty")
    for extra, expect_colour in (({}, True), ({"NO_COLOR": "1"}, False)):
        output = tmp_path / "out.txt"
        script = textwrap.dedent(
            f"""
            import os, pty, sys
            out = open({str(output)!r}, "wb")
            def read(fd):
                data = os.read(fd, 65536)
                out.write(data)
                return data
            pty.spawn([sys.executable, "-m", "otel_agents.cli", "runs"], read)
            """
        )
        env = clean_env(story.path, COLUMNS="120", **extra)
        subprocess.run([sys.executable, "-c", script], env=env, timeout=60, check=True)
        text = output.read_bytes().decode()
        assert "RUN" in text
        assert ("\x1b[" in text) is expect_colour, text


def test_a_run_is_found_by_prefix_full_id_or_trace_id(story: StoryStore) -> None:
    trace_id = cli(story.path, "runs", "--json").json()[1]["trace_id"]
    for ref in (story.ok_run[:6], story.ok_run, story.ok_run[:10].upper(), trace_id[:12]):
        result = cli(story.path, "show", ref, "--json")
        assert result.code == 0, (ref, result.err)
        assert result.json()["run"]["run_id"] == story.ok_run


def test_unknown_short_and_ambiguous_run_ids_are_clear_errors(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    program = tmp_path / "chosen_ids.py"
    program.write_text(
        textwrap.dedent(
            """
            import otel_agents
            from otel_agents import semconv as sc
            otel_agents.instrument()
            for run_id in ("feedbeef0001", "feedbeef0002", "cafe0003"):
                with otel_agents.agent("chosen", attributes={sc.RUN_ID: run_id}):
                    pass
            """
        )
    )
    subprocess.run([sys.executable, str(program)], env=clean_env(store), check=True)
    ambiguous = cli(store, "show", "feedbeef")
    assert ambiguous.code == 1
    assert "'feedbeef' matches several runs" in ambiguous.err
    assert "feedbeef0001" in ambiguous.err and "feedbeef0002" in ambiguous.err
    assert cli(store, "show", "feedbeef0002", "--json").json()["run"]["run_id"] == "feedbeef0002"
    unknown = cli(store, "show", "0123abcd")
    assert unknown.code == 1 and "no run matches '0123abcd'" in unknown.err
    short = cli(store, "show", "caf")
    assert short.code == 1 and "too short" in short.err
    nonsense = cli(store, "show", "../../etc/passwd")
    assert nonsense.code == 1 and "is not a run id" in nonsense.err


def test_without_content_capture_the_path_has_its_shape_and_says_why(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    [run_id] = run_program(store, capture="NO_CONTENT")
    result = cli(store, "show", run_id, **WIDE)
    assert result.code == 0, result.err
    assert "tool     create_account ✓  require_approval" in result.out
    assert "approved  by alice@example.com" in result.out
    for content_line in ("result ", "says ", "thinks "):
        assert f"  {content_line}" not in result.out
    # Arguments appear only as their content-free summary: type, size, key names.
    args = [
        line.split("args", 1)[1].strip() for line in result.out.splitlines() if " args " in line
    ]
    assert args and all(a.startswith("dict with ") for a in args), args
    assert "V-1042" not in result.out
    assert "content capture was off" in result.out


def test_content_in_events_is_shown_too(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    [run_id] = run_program(store, capture="EVENT_ONLY")
    result = cli(store, "show", run_id, **WIDE)
    assert result.code == 0, result.err
    assert 'args     {"vendor_id":"V-1042"}' in result.out
    assert "says     Before creating anything I must verify the bank account." in result.out


def test_latest_is_the_newest_run(story: StoryStore) -> None:
    for args in (("show",), ("show", "latest"), ("audit", "--run", "latest")):
        result = cli(story.path, *args)
        assert result.code == 0, result.err
        assert story.crashed_run in result.out
        assert story.ok_run not in result.out
