"""Human approval: approved, rejected, timed out, approver crashed, no approver; the traced
wait; and the built-in channels (callback, terminal, approval files, loopback HTTP), the
cross-process ones driven from another process or thread as a person would."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from policy_helpers import attrs, reinstrument

import otel_agents
from otel_agents import semconv as sc
from otel_agents.policy import (
    ApprovalDecision,
    ApprovalRejected,
    ApprovalRequest,
    ApprovalSettings,
    Approver,
    FileApprover,
    HttpApprover,
    Match,
    Mode,
    Outcome,
    Policy,
    Rule,
    TerminalApprover,
    Verdict,
)

granted: list[str] = []


@otel_agents.tool(tags=["grants:iam"])
def grant_permission(account_id: str, role: str) -> str:
    granted.append(f"{account_id}:{role}")
    return "granted"


@pytest.fixture(autouse=True)
def _clear() -> None:
    granted.clear()


def approval_policy(
    timeout: float = 5.0, on_timeout: str = "reject", on_error: str = "reject"
) -> Policy:
    settings = ApprovalSettings(
        timeout_seconds=timeout, on_timeout=Outcome(on_timeout), on_error=Outcome(on_error)
    )
    return Policy(
        rules=(
            Rule(
                "admin-needs-approval",
                Verdict.REQUIRE_APPROVAL,
                Match(tool="grant_permission", arguments={"role": "admin"}),
                reason="admin is powerful",
            ),
        ),
        mode=Mode.ENFORCE,
        approval=settings,
    )


def the_wait(telemetry: Any) -> Any:
    wait = telemetry.span("await_approval grant_permission")
    tool = telemetry.span("execute_tool grant_permission")
    assert wait.parent is not None and wait.parent.span_id == tool.context.span_id
    assert tool.start_time <= wait.start_time and wait.end_time <= tool.end_time
    return wait


def test_approved(telemetry: Any) -> None:
    seen: list[ApprovalRequest] = []

    def finance(request: ApprovalRequest) -> ApprovalDecision:
        seen.append(request)
        time.sleep(0.05)
        return ApprovalDecision(True, approver="alice@example.com", reason="verified by phone")

    reinstrument(telemetry, policy=approval_policy(), approver=finance)
    with otel_agents.agent("provisioning") as run, otel_agents.tool_call_id("call_7"):
        assert grant_permission("acct-1", "admin") == "granted"
    assert granted == ["acct-1:admin"]
    (request,) = seen
    assert (request.tool, request.agent, request.rule) == (
        "grant_permission",
        "provisioning",
        "admin-needs-approval",
    )
    assert request.reason == "admin is powerful"
    assert request.run_id == run.run_id and request.call_id == "call_7"
    assert json.loads(request.arguments or "") == {"account_id": "acct-1", "role": "admin"}
    wait = attrs(the_wait(telemetry))
    assert wait[sc.APPROVAL_STATUS] == "approved"
    assert wait[sc.APPROVAL_APPROVER] == "alice@example.com"
    assert wait[sc.APPROVAL_REASON] == "verified by phone"
    assert wait[sc.APPROVAL_CHANNEL] == "callback"
    assert wait[sc.POLICY_RULE] == "admin-needs-approval"
    assert wait[sc.GEN_AI_TOOL_CALL_ID] == "call_7"
    assert wait[sc.RUN_ID] == run.run_id
    assert wait[sc.APPROVAL_WAIT_DURATION] >= 0.05
    (point,) = telemetry.metric_points(sc.METRIC_APPROVAL_DURATION)
    assert dict(point.attributes) == {sc.APPROVAL_STATUS: "approved"}
    assert point.count == 1 and point.sum >= 0.05


def test_rejected(telemetry: Any) -> None:
    reinstrument(
        telemetry,
        policy=approval_policy(),
        approver=lambda request: ApprovalDecision(False, "bob", "not for vendors"),
    )
    with pytest.raises(ApprovalRejected) as caught:
        grant_permission("acct-1", "admin")
    assert granted == []
    stop = caught.value
    assert (stop.status, stop.approver, stop.rule) == ("rejected", "bob", "admin-needs-approval")
    assert str(stop) == (
        "tool call 'grant_permission' was not approved: admin is powerful "
        "(policy rule 'admin-needs-approval'; approval rejected by bob)"
    )
    wait = attrs(the_wait(telemetry))
    assert (wait[sc.APPROVAL_STATUS], wait[sc.APPROVAL_APPROVER]) == ("rejected", "bob")
    assert the_wait(telemetry).status.is_ok  # a rejection is an answer, not an error


def test_calls_the_rule_does_not_cover_are_not_held(telemetry: Any) -> None:
    reinstrument(telemetry, policy=approval_policy(), approver=lambda request: False)
    assert grant_permission("acct-1", "viewer") == "granted"
    assert not [s for s in telemetry.spans() if s.name.startswith("await_approval")]


@pytest.mark.parametrize(("default", "runs"), [("reject", False), ("approve", True)])
def test_timed_out_takes_the_default_outcome(telemetry: Any, default: str, runs: bool) -> None:
    release = threading.Event()

    def slow(request: ApprovalRequest) -> bool:
        release.wait(60)  # answers only when the test says so, long after the timeout
        return True

    reinstrument(telemetry, policy=approval_policy(timeout=0.1, on_timeout=default), approver=slow)
    if runs:
        grant_permission("acct-1", "admin")
    else:
        with pytest.raises(ApprovalRejected) as caught:
            grant_permission("acct-1", "admin")
        assert caught.value.status == "timed_out"
    assert not release.is_set()  # the call came back while the approver still had not answered
    release.set()
    assert granted == (["acct-1:admin"] if runs else [])
    wait = attrs(the_wait(telemetry))
    assert wait[sc.APPROVAL_STATUS] == "timed_out"
    assert wait[sc.APPROVAL_WAIT_DURATION] >= 0.1
    assert f"default outcome: {default}" in wait[sc.APPROVAL_REASON]
    assert sc.APPROVAL_APPROVER not in wait


@pytest.mark.parametrize(("default", "runs"), [("reject", False), ("approve", True)])
def test_approver_crash_takes_the_error_outcome(telemetry: Any, default: str, runs: bool) -> None:
    def crashing(request: ApprovalRequest) -> bool:
        raise ConnectionError("chat-ops bot is down (token=sk-live-abcdefghijklmnopqrstuvwx)")

    reinstrument(telemetry, policy=approval_policy(on_error=default), approver=crashing)
    if runs:
        grant_permission("acct-1", "admin")
    else:
        with pytest.raises(ApprovalRejected) as caught:
            grant_permission("acct-1", "admin")
        assert caught.value.status == "error"
    assert granted == (["acct-1:admin"] if runs else [])
    wait = the_wait(telemetry)
    assert attrs(wait)[sc.APPROVAL_STATUS] == "error"
    assert attrs(wait)[sc.ERROR_TYPE] == "ConnectionError"
    assert not wait.status.is_ok
    assert "sk-live-abcdefghijklmnopqrstuvwx" not in (wait.status.description or "")


def test_an_approver_answering_nonsense_is_an_error(telemetry: Any) -> None:
    reinstrument(telemetry, policy=approval_policy(), approver=lambda request: "sure")  # type: ignore[arg-type, return-value]
    with pytest.raises(ApprovalRejected) as caught:
        grant_permission("acct-1", "admin")
    assert caught.value.status == "error"
    assert attrs(the_wait(telemetry))[sc.ERROR_TYPE] == "TypeError"


def test_no_approver_configured_is_an_error_outcome(telemetry: Any) -> None:
    reinstrument(telemetry, policy=approval_policy())
    with pytest.raises(ApprovalRejected) as caught:
        grant_permission("acct-1", "admin")
    assert caught.value.status == "error"
    wait = attrs(the_wait(telemetry))
    assert (wait[sc.APPROVAL_CHANNEL], wait[sc.ERROR_TYPE]) == (
        "none",
        "otel_agents.policy.gate.NoApprover",
    )


def test_observe_mode_never_asks(telemetry: Any) -> None:
    asked: list[str] = []
    reinstrument(
        telemetry,
        policy=approval_policy().with_mode("observe"),
        approver=lambda request: asked.append(request.tool) or False,  # type: ignore[func-returns-value]
    )
    grant_permission("acct-1", "admin")
    assert (asked, granted) == ([], ["acct-1:admin"])


def test_a_custom_approver_class(telemetry: Any) -> None:
    class OnCall(Approver):
        channel = "pager"

        def request(self, request: ApprovalRequest, timeout: float) -> ApprovalDecision | None:
            return ApprovalDecision(True, "on-call")

    reinstrument(telemetry, policy=approval_policy(), approver=OnCall())
    grant_permission("acct-1", "admin")
    assert attrs(the_wait(telemetry))[sc.APPROVAL_CHANNEL] == "pager"


# -- the channels ----------------------------------------------------------------------


def a_request(request_id: str = "req-1") -> ApprovalRequest:
    return ApprovalRequest(
        id=request_id,
        tool="grant_permission",
        agent="provisioning",
        arguments='{"role": "admin"}',
        rule="admin-needs-approval",
        reason="admin is powerful",
    )


ANSWER_FROM_ANOTHER_PROCESS = """
import sys, time
from otel_agents.policy import FileApprover
directory = sys.argv[1]
for _ in range(200):
    pending = FileApprover.pending(directory)
    if pending:
        FileApprover.answer(directory, pending[0]["id"], True, "carol", "checked the contract")
        break
    time.sleep(0.05)
"""


def test_file_approver_answered_by_another_process(telemetry: Any, tmp_path: Path) -> None:
    reinstrument(
        telemetry, policy=approval_policy(timeout=20), approver=FileApprover(tmp_path, 0.02)
    )
    helper = subprocess.Popen([sys.executable, "-c", ANSWER_FROM_ANOTHER_PROCESS, str(tmp_path)])
    try:
        assert grant_permission("acct-1", "admin") == "granted"
    finally:
        helper.wait(timeout=20)
    wait = attrs(the_wait(telemetry))
    assert (wait[sc.APPROVAL_STATUS], wait[sc.APPROVAL_APPROVER], wait[sc.APPROVAL_CHANNEL]) == (
        "approved",
        "carol",
        "file",
    )
    assert list(tmp_path.iterdir()) == []  # request and decision files are cleaned up


def test_file_approver_times_out_and_rejects_a_bad_decision(tmp_path: Path) -> None:
    approver = FileApprover(tmp_path, poll_interval=0.01)
    assert approver.request(a_request(), timeout=0.05) is None
    (tmp_path / "req-2.decision.json").write_text('{"approved": "yes"}')
    with pytest.raises(ValueError, match="approved"):
        approver.request(a_request("req-2"), timeout=1)


def http(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_http_approver_on_loopback(telemetry: Any) -> None:
    approver = HttpApprover(token="s3cret")
    assert approver.url.startswith("http://127.0.0.1:")
    outcome: list[str] = []

    def human() -> None:
        for _ in range(200):
            status, pending = http("GET", f"{approver.url}/approvals", token="s3cret")
            if status == 200 and pending:
                request_id = pending[0]["id"]
                assert pending[0]["rule"] == "admin-needs-approval"
                assert http("GET", f"{approver.url}/approvals")[0] == 401
                assert (
                    http(
                        "POST", f"{approver.url}/approvals/{request_id}", {"approved": 1}, "s3cret"
                    )[0]
                    == 400
                )
                status, body = http(
                    "POST",
                    f"{approver.url}/approvals/{request_id}",
                    {"approved": False, "approver": "dave", "reason": "use billing"},
                    "s3cret",
                )
                outcome.append(f"{status} {body['status']}")
                return
            time.sleep(0.02)

    reinstrument(telemetry, policy=approval_policy(timeout=20), approver=approver)
    person = threading.Thread(target=human)
    person.start()
    with pytest.raises(ApprovalRejected):
        grant_permission("acct-1", "admin")
    person.join(10)
    assert outcome == ["200 rejected"]
    wait = attrs(the_wait(telemetry))
    assert (wait[sc.APPROVAL_STATUS], wait[sc.APPROVAL_APPROVER], wait[sc.APPROVAL_REASON]) == (
        "rejected",
        "dave",
        "use billing",
    )
    assert http("POST", f"{approver.url}/approvals/gone", {"approved": True}, "s3cret")[0] == 404
    approver.close()  # an approver you pass in is yours to close
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{approver.url}/approvals", timeout=2)


@pytest.mark.skipif(os.name != "posix", reason="terminal timeouts use select() on POSIX")
def test_terminal_approver_reads_an_answer_and_times_out() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "r") as stdin, os.fdopen(write_end, "w") as typist:
        shown: list[str] = []

        class Screen:
            def write(self, text: str) -> None:
                shown.append(text)

            def flush(self) -> None:
                pass

        approver = TerminalApprover(stdin=stdin, stdout=Screen(), approver="erin")  # type: ignore[arg-type]
        assert approver.request(a_request(), timeout=0.1) is None  # nobody typed
        typist.write("y  vendor confirmed\n")
        typist.flush()
        answer = approver.request(a_request(), timeout=5)
        assert answer == ApprovalDecision(True, "erin", "vendor confirmed")
        typist.write("n\n")
        typist.flush()
        assert approver.request(a_request(), timeout=5) == ApprovalDecision(False, "erin", None)
    screen = "".join(shown)
    assert "Approval needed: tool 'grant_permission' for agent 'provisioning'" in screen
    assert "admin is powerful" in screen and "Approve? [y/N]" in screen


def test_the_policy_file_picks_a_channel_the_gate_owns(telemetry: Any, tmp_path: Path) -> None:
    from otel_agents.policy import PolicyGate
    from otel_agents.runtime import get_runtime

    def gate() -> PolicyGate:
        (found,) = [o for o in get_runtime().observers if isinstance(o, PolicyGate)]
        return found

    reinstrument(
        telemetry, policy=f"approval:\n  channel: file\n  directory: {tmp_path / 'inbox'}\n"
    )
    assert isinstance(gate().approver, FileApprover)
    assert (tmp_path / "inbox").is_dir()
    reinstrument(telemetry, policy="approval:\n  channel: http\n")
    endpoint = gate().approver
    assert isinstance(endpoint, HttpApprover)
    assert http("GET", f"{endpoint.url}/approvals") == (200, [])
    otel_agents.uninstrument()  # the gate built it, so the gate stops it
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{endpoint.url}/approvals", timeout=2)


def test_a_waiting_approval_is_counted_as_pending_until_answered(telemetry: Any) -> None:
    pending_while_waiting: list[list[Any]] = []

    def finance(request: ApprovalRequest) -> ApprovalDecision:
        pending_while_waiting.append(telemetry.metric_points(sc.METRIC_APPROVALS_PENDING))
        return ApprovalDecision(True, approver="alice@example.com")

    reinstrument(telemetry, policy=approval_policy(), approver=finance)
    with otel_agents.agent("provisioning"):
        grant_permission("acct-1", "admin")
    ((waiting,),) = pending_while_waiting
    assert dict(waiting.attributes) == {sc.GEN_AI_TOOL_NAME: "grant_permission"}
    assert waiting.value == 1
    (answered,) = telemetry.metric_points(sc.METRIC_APPROVALS_PENDING)
    assert answered.value == 0


def test_a_crashed_approver_leaves_nothing_pending(telemetry: Any) -> None:
    def crash(request: ApprovalRequest) -> ApprovalDecision:
        raise ConnectionError("approval service down")

    reinstrument(telemetry, policy=approval_policy(), approver=crash)
    with otel_agents.agent("provisioning"), contextlib.suppress(Exception):
        grant_permission("acct-1", "admin")
    (point,) = telemetry.metric_points(sc.METRIC_APPROVALS_PENDING)
    assert point.value == 0
