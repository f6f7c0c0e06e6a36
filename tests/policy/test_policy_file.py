"""Policy files: the shipped example loads, Python-built policies are the same objects, and a
malformed file fails at start-up naming the file, the line, the column and the problem."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path
from typing import Any

import pytest
from policy_helpers import VENDOR_POLICY, reinstrument

import otel_agents
from otel_agents import semconv as sc
from otel_agents.config import ConfigError
from otel_agents.policy import (
    ApprovalSettings,
    Limit,
    Match,
    Mode,
    OnError,
    Outcome,
    Policy,
    PolicyError,
    Rule,
    ToolCallDenied,
    Verdict,
    load_policy,
    parse_policy,
)
from otel_agents.runtime import get_runtime


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), "utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> PolicyError:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    error = caught.value
    assert error.file == str(path)
    assert str(error).startswith(f"{path}:{error.line}:{error.column}: ")
    return error


# -- the example and the Python model --------------------------------------------------


def test_the_vendor_onboarding_example_loads_completely() -> None:
    policy = load_policy(VENDOR_POLICY)
    assert policy.name == "vendor-onboarding"
    assert policy.mode is Mode.ENFORCE
    assert policy.on_error is OnError.FAIL_CLOSED
    assert [r.id for r in policy.rules] == [
        "intake-is-read-only",
        "no-admin-for-vendors",
        "production-iam-escalates",
        "bulk-grants-need-approval",
        "routine-grants",
        "new-accounts-need-finance",
        "welcome-email-trial",
    ]
    assert policy.limits.max_failures == Limit(3, Verdict.ESCALATE)
    assert policy.limits.per_request_usd == Limit(5.0, Verdict.REQUIRE_APPROVAL)
    assert policy.limits.per_run_usd == Limit(50.0, Verdict.DENY)
    no_admin = policy.rules[1]
    assert no_admin.match.arguments == {"role": ["admin", "owner"]}
    assert policy.rules[-1].mode is Mode.OBSERVE
    # A rule's approval settings start from the policy's and override what they name.
    finance = policy.rules[5].approval
    assert finance is not None
    assert finance.timeout_seconds == 3600
    assert (finance.on_timeout, finance.channel) == (Outcome.REJECT, "file")


def test_yaml_and_python_build_the_same_policy() -> None:
    text = """
    mode: enforce
    rules:
      - id: intake-read-only
        match: {agent: intake, tags: "writes:*"}
        verdict: deny
        reason: read only
      - id: admin
        match: {tool: grant_permission, arguments: {role: admin}}
        verdict: require_approval
        approval: {timeout_seconds: 30, on_timeout: approve}
    """
    built = Policy(
        mode="enforce",  # type: ignore[arg-type]
        rules=(
            Rule("intake-read-only", "deny", Match(agent="intake", tags="writes:*"), "read only"),  # type: ignore[arg-type]
            Rule(
                "admin",
                Verdict.REQUIRE_APPROVAL,
                Match(tool="grant_permission", arguments={"role": "admin"}),
                approval=ApprovalSettings(timeout_seconds=30, on_timeout=Outcome.APPROVE),
            ),
        ),
    )
    loaded = parse_policy(textwrap.dedent(text))
    assert loaded.rules == built.rules
    assert loaded.mode is built.mode is Mode.ENFORCE


def test_a_python_policy_is_checked_too() -> None:
    with pytest.raises(PolicyError, match="'block' is not one of allow"):
        Rule("r", "block")  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="used twice"):
        Policy(rules=(Rule("r", Verdict.DENY), Rule("r", Verdict.ALLOW)))
    with pytest.raises(PolicyError, match="channel 'file' needs a directory"):
        ApprovalSettings(channel="file")


# -- malformed files -------------------------------------------------------------------


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        mode: enforce
        rules:
          - id: a
            verdict: deny
            reason: this: breaks
        """,
    )
    assert error.line == 5
    assert "invalid YAML" in error.problem and "mapping values are not allowed" in error.problem


def test_unknown_key_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        rules:
          - id: a
            verdict: deny
            match:
              tools: [create_account]
        """,
    )
    assert (error.line, error.column) == (5, 7)
    assert "rules[0].match: unknown key 'tools'" in error.problem
    assert "did you mean 'tool'?" in error.problem


def test_unknown_top_level_key(tmp_path: Path) -> None:
    error = load_error(tmp_path, "mode: observe\nenforcement: strict\n")
    assert (error.line, error.column) == (2, 1)
    assert "unknown key 'enforcement'" in error.problem


def test_wrong_type_names_what_was_expected(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        limits:
          retries:
            max_failures: three
        """,
    )
    assert (error.line, error.column) == (3, 19)
    assert error.problem == "limits.retries.max_failures: expected a whole number, got 'three'"


def test_wrong_type_for_a_boolean_and_a_mapping(tmp_path: Path) -> None:
    error = load_error(
        tmp_path, "rules:\n  - id: a\n    verdict: deny\n    match: {reversible: 3}\n"
    )
    assert error.line == 4
    assert "rules[0].match.reversible: expected true or false" in error.problem
    error = load_error(tmp_path, "defaults: allow\n")
    assert error.line == 1
    assert "defaults: expected a mapping" in error.problem


def test_unknown_verdict(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        rules:
          - id: fine
            verdict: allow
          - id: strict
            verdict: block
        """,
    )
    assert (error.line, error.column) == (5, 14)
    assert "rules[1].verdict: 'block' is not one of allow, require_approval, escalate, deny" in (
        error.problem
    )


def test_unknown_mode_and_missing_required_key(tmp_path: Path) -> None:
    error = load_error(tmp_path, "mode: strict\n")
    assert (error.line, error.problem) == (1, "mode: 'strict' is not one of observe, enforce")
    error = load_error(tmp_path, "rules:\n  - id: a\n")
    assert error.line == 2
    assert "missing required key 'verdict'" in error.problem


def test_duplicate_rule_ids_and_keys(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        "rules:\n  - id: a\n    verdict: deny\n  - id: a\n    verdict: allow\n",
    )
    assert error.line == 4
    assert "id 'a' is already used on line 2" in error.problem
    error = load_error(tmp_path, "mode: observe\nmode: enforce\n")
    assert (error.line, error.problem) == (2, "key 'mode' is given twice")


def test_model_level_problems_get_a_position(tmp_path: Path) -> None:
    error = load_error(tmp_path, "approval:\n  channel: file\n")
    assert error.line == 2
    assert "channel 'file' needs a directory" in error.problem
    error = load_error(tmp_path, "approval:\n  timeout_seconds: 0\n")
    assert "timeout_seconds must be positive" in error.problem


def test_empty_missing_and_future_version(tmp_path: Path) -> None:
    assert "empty" in load_error(tmp_path, "# nothing\n").problem
    assert "only version 1" in load_error(tmp_path, "version: 2\n").problem
    with pytest.raises(PolicyError, match="cannot read the policy file") as caught:
        load_policy(tmp_path / "missing.yaml")
    assert caught.value.file == str(tmp_path / "missing.yaml")


def test_policy_error_is_a_config_error() -> None:
    assert issubclass(PolicyError, ConfigError)


# -- start-up --------------------------------------------------------------------------


def test_instrument_fails_at_start_up_on_a_bad_policy(telemetry: Any, tmp_path: Path) -> None:
    before = get_runtime()
    path = write(tmp_path, "rules:\n  - id: a\n    verdict: nope\n")
    with pytest.raises(PolicyError, match=r"policy.yaml:3:14: rules\[0\]\.verdict"):
        reinstrument(telemetry, policy=path)
    assert get_runtime() is before  # nothing was changed


def test_policy_file_and_mode_from_the_environment(
    telemetry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "mode: enforce\nrules:\n  - id: no\n    verdict: deny\n")
    monkeypatch.setenv("OTEL_AGENTS_POLICY_FILE", str(path))
    monkeypatch.setenv("OTEL_AGENTS_POLICY_MODE", "observe")
    reinstrument(telemetry)

    @otel_agents.tool
    def ping() -> str:
        return "pong"

    assert ping() == "pong"  # observe: the deny is recorded, not applied
    span = telemetry.span("execute_tool ping")
    assert span.attributes[sc.POLICY_VERDICT] == "deny"
    assert span.attributes[sc.POLICY_MODE] == "observe"


def test_bad_policy_mode_is_a_config_error(telemetry: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_AGENTS_POLICY_MODE", "strict")
    with pytest.raises(ConfigError, match="OTEL_AGENTS_POLICY_MODE"):
        reinstrument(telemetry)


def test_yaml_text_is_accepted_directly(telemetry: Any) -> None:
    reinstrument(telemetry, policy="mode: enforce\nrules:\n  - id: no\n    verdict: deny\n")

    @otel_agents.tool
    def ping() -> str:
        return "pong"

    with pytest.raises(ToolCallDenied):
        ping()


# -- unreadable files, patterns that never match, tools that never register ----------------


@pytest.mark.parametrize(
    ("content", "line", "column", "problem"),
    [
        (
            b"version: 1\nrules:\n  - id: a\x00b\n    verdict: deny\n",
            3,
            10,
            "'\\x00' is not allowed",
        ),
        (b"version: 1\nname: caf\xe9\n", 2, 10, "byte 0xe9 is not UTF-8"),
        (b"version: 1\n\x07rules: []\n", 2, 1, "'\\x07' is not allowed"),
    ],
)
def test_unreadable_bytes_are_policy_errors_with_a_position(
    tmp_path: Path, content: bytes, line: int, column: int, problem: str
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_bytes(content)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    error = caught.value
    assert (error.file, error.line, error.column) == (str(path), line, column)
    assert problem in error.problem


def test_a_pattern_that_can_never_match_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path,
        """
        rules:
          - id: fine
            match: {tool: "grant_[ab]*"}
            verdict: deny
          - id: broken
            match:
              tool: ['[unclosed', ok]
            verdict: deny
        """,
    )
    policy = load_policy(path)  # still loads: the rest of the policy works
    assert [r.line for r in policy.rules] == [2, 5]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"{path}:7:14: rule 'broken': tool pattern '[unclosed' can never match: its '[' is"
        " never closed (write '[[]' for a literal '[')"
    ]


def test_a_rule_for_a_tool_that_never_registers_is_warned_about_once(
    telemetry: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path,
        """
        rules:
          - id: typo
            match: {tool: grant_permision}
            verdict: deny
          - id: glob-for-nothing
            match: {tool: "billing_*"}
            verdict: deny
          - id: fine
            match: {tool: [lookup_vendor_record, "look*"]}
            verdict: allow
        """,
    )
    reinstrument(telemetry, policy=path)

    @otel_agents.tool
    def grant_permission(role: str) -> str:
        return role

    @otel_agents.tool
    def lookup_vendor_record() -> str:
        return "ok"

    for _ in range(2):
        with otel_agents.agent("intake"):
            lookup_vendor_record()
            grant_permission("viewer")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2, warnings  # once, after the first run
    assert warnings[0].startswith(
        f"{path}:2: rule 'typo' names tool 'grant_permision', but no tool of that name is"
        " defined or was called (did you mean 'grant_permission'?)"
    )
    assert warnings[1].startswith(f"{path}:5: rule 'glob-for-nothing' names tool 'billing_*'")


def test_enforce_mode_failing_open_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    text = "version: 1\nmode: enforce\non_error: fail_open\n"
    with caplog.at_level(logging.WARNING, logger="otel_agents"):
        policy = parse_policy(text, "open.yaml")
    assert policy.on_error is OnError.FAIL_OPEN
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("open.yaml:3:11: on_error: fail_open in enforce mode")


def test_fail_closed_is_the_default() -> None:
    assert parse_policy("version: 1\nmode: enforce\n", "p.yaml").on_error is OnError.FAIL_CLOSED
