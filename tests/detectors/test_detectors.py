"""Each detector fires on its pattern and stays quiet on the near miss; findings land on the
span, the run totals and the anomalies metric. LLM calls go through the real `openai` SDK
over its HTTP layer (recorded wire-format fixture, priced by a price override)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
from detector_helpers import (
    anomaly_counts,
    anomaly_events,
    ask,
    attrs,
    flagged,
    llm_client,
    reinstrument,
)

import otel_agents
from otel_agents import semconv as sc
from otel_agents.config import ConfigError
from otel_agents.detectors import DetectorSettings, bounces, error_shape
from otel_agents.policy import ToolContract

RETRY = sc.DetectorNameValues.RETRY_LOOP
SILENT = sc.DetectorNameValues.SILENT_TOOL_FAILURE
SPIKE = sc.DetectorNameValues.COST_SPIKE
BUDGET = sc.DetectorNameValues.BUDGET_EXCEEDED
PING_PONG = sc.DetectorNameValues.HANDOFF_PING_PONG
RUNAWAY = sc.DetectorNameValues.RUNAWAY_RUN


@otel_agents.tool
def lookup(vendor_id: str) -> dict[str, str]:
    return {"vendor_id": vendor_id}


@otel_agents.tool
def unreliable(vendor_id: str) -> str:
    raise ConnectionError("registry down")


def root(telemetry: Any, name: str = "run") -> dict[str, Any]:
    return attrs(telemetry.span(f"invoke_agent {name}"))


# -- retry loop ------------------------------------------------------------------------


def test_identical_calls_fire_on_the_fifth(telemetry: Any) -> None:
    reinstrument(telemetry)
    with otel_agents.agent("run") as run:
        for _ in range(6):
            lookup("v-1")
    (span,) = flagged(telemetry, RETRY)
    assert attrs(span)[sc.TOOL_CALL_ATTEMPT] == 5
    (event,) = anomaly_events(span)
    assert event == {
        sc.DETECTOR_NAME: RETRY,
        sc.DETECTOR_MESSAGE: "lookup was called 5 times with identical arguments",
        sc.DETECTOR_THRESHOLD: 5.0,
        sc.DETECTOR_OBSERVED: 5.0,
        sc.RUN_ID: run.run_id,
    }
    assert root(telemetry)[sc.RUN_ANOMALIES] == 1
    assert root(telemetry)[sc.RUN_RETRIES] == 5
    assert anomaly_counts(telemetry) == {RETRY: 1}
    (point,) = telemetry.metric_points(sc.METRIC_ANOMALIES)
    assert dict(point.attributes) == {sc.DETECTOR_NAME: RETRY, sc.GEN_AI_AGENT_NAME: "run"}


def test_four_identical_calls_or_varied_arguments_are_fine(telemetry: Any) -> None:
    reinstrument(telemetry)
    with otel_agents.agent("run"):
        for _ in range(4):
            lookup("v-1")
        for index in range(10):
            lookup(f"v-{index + 2}")
    assert flagged(telemetry, RETRY) == []
    assert root(telemetry)[sc.RUN_ANOMALIES] == 0


def test_every_tool_span_carries_its_attempt_number(telemetry: Any) -> None:
    reinstrument(telemetry)
    lookup("v-1")  # outside any run or trace: nothing to count in, a first attempt
    with otel_agents.agent("run"):
        lookup("v-1")
        lookup("v-1")
    attempts = [
        attrs(span)[sc.TOOL_CALL_ATTEMPT]
        for span in telemetry.spans()
        if span.name == "execute_tool lookup"
    ]
    assert attempts == [1, 1, 2]


def test_the_same_failing_call_repeated(telemetry: Any) -> None:
    reinstrument(telemetry)
    with otel_agents.agent("run"):
        for _ in range(3):
            with pytest.raises(ConnectionError):
                unreliable("v-1")
    (span,) = flagged(telemetry, RETRY)
    assert attrs(span)[sc.TOOL_CALL_ATTEMPT] == 3
    assert anomaly_events(span)[0][sc.DETECTOR_MESSAGE] == (
        "unreliable failed 3 times with identical arguments"
    )


def test_two_failures_are_a_near_miss(telemetry: Any) -> None:
    reinstrument(telemetry)
    with otel_agents.agent("run"):
        for _ in range(2):
            with pytest.raises(ConnectionError):
                unreliable("v-1")
    assert flagged(telemetry, RETRY) == []


def test_one_tool_failing_in_a_row_with_varied_arguments(telemetry: Any) -> None:
    reinstrument(telemetry)
    with otel_agents.agent("run"):
        for index in range(5):
            with pytest.raises(ConnectionError):
                unreliable(f"v-{index}")
    (span,) = flagged(telemetry, RETRY)
    assert anomaly_events(span)[0][sc.DETECTOR_MESSAGE] == "unreliable failed 5 times in a row"


def test_a_success_breaks_the_streak(telemetry: Any) -> None:
    @otel_agents.tool
    def sometimes(vendor_id: str, fail: bool) -> str:
        if fail:
            raise ConnectionError("down")
        return "ok"

    reinstrument(telemetry)
    with otel_agents.agent("run"):
        for index in range(8):
            with contextlib.suppress(ConnectionError):
                sometimes(f"v-{index}", index != 4)  # 4 failures, a success, 3 failures
    assert flagged(telemetry, RETRY) == []


# -- silent tool failure ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "why"),
    [
        ({"error": "vendor not found"}, "the result has a non-empty 'error' field"),
        ({"ok": False, "data": None}, "the result says ok: false"),
        ({"status": "FAILED"}, "the result has status: failed"),
        ({"status_code": 503}, "the result has status_code 503"),
        ("Error: vendor not found", "the result text reads as an error"),
        ("Traceback (most recent call last):\n  ...", "the result text reads as an error"),
        ([], "the result is empty"),
        ("   ", "the result is empty"),
    ],
)
def test_error_shaped_or_empty_results_are_flagged(telemetry: Any, result: Any, why: str) -> None:
    @otel_agents.tool
    def fetch() -> Any:
        return result

    reinstrument(telemetry)
    with otel_agents.agent("run"):
        assert fetch() == result
    (span,) = flagged(telemetry, SILENT)
    assert span.status.is_ok  # the span itself says OK: that is what makes it silent
    assert (
        anomaly_events(span)[0][sc.DETECTOR_MESSAGE] == f"fetch returned without raising, but {why}"
    )


@pytest.mark.parametrize(
    "result",
    [
        {"error": None, "vendor_id": "v-1"},
        {"errors": []},
        {"ok": True},
        {"status": "active"},
        {"status_code": 200},
        "No errors found in the vendor record.",
        None,  # procedures return None
        0,
        False,
    ],
)
def test_ordinary_results_are_not_flagged(telemetry: Any, result: Any) -> None:
    @otel_agents.tool
    def fetch() -> Any:
        return result

    reinstrument(telemetry)
    with otel_agents.agent("run"):
        fetch()
    assert flagged(telemetry, SILENT) == []


def test_an_output_that_breaks_its_contract_is_a_silent_failure(telemetry: Any) -> None:
    @otel_agents.tool(contract=ToolContract(output={"type": "object", "required": ["account_id"]}))
    def create() -> dict[str, str]:
        return {"account": "acct-1"}

    reinstrument(telemetry)
    with otel_agents.agent("run"):
        create()
    (span,) = flagged(telemetry, SILENT)
    assert "breaks the tool's output contract" in anomaly_events(span)[0][sc.DETECTOR_MESSAGE]


def test_raised_errors_and_empty_results_when_switched_off_are_not_silent(telemetry: Any) -> None:
    @otel_agents.tool
    def empty() -> list[str]:
        return []

    reinstrument(telemetry, detectors={"silent_failure_empty": False})
    with otel_agents.agent("run"):
        empty()
        with pytest.raises(ConnectionError):
            unreliable("v-1")
    assert flagged(telemetry, SILENT) == []


def test_mcp_style_is_error_results() -> None:
    class CallToolResult:
        isError = True

    assert error_shape(CallToolResult()) == "the result is marked as an error"


# -- cost spike and budget -------------------------------------------------------------


def test_a_call_far_above_the_baseline_is_a_cost_spike(telemetry: Any) -> None:
    reinstrument(telemetry)
    client = llm_client(100, 100, 100, 100, 100, 600)  # $0.10 x5, then $0.60
    with otel_agents.agent("summarizer"):
        for _ in range(6):
            ask(client)
    (span,) = flagged(telemetry, SPIKE)
    assert attrs(span)[sc.COST_USD] == pytest.approx(0.6)
    (event,) = anomaly_events(span)
    assert event[sc.DETECTOR_OBSERVED] == pytest.approx(0.6)
    assert event[sc.DETECTOR_THRESHOLD] == pytest.approx(0.5)  # 5 x the median of $0.10
    assert (
        "6.0x the recent median of $0.1000 for summarizer on priced-test-model"
        in (event[sc.DETECTOR_MESSAGE])
    )


def test_below_the_factor_or_before_a_baseline_is_no_spike(telemetry: Any) -> None:
    reinstrument(telemetry)
    with otel_agents.agent("summarizer"):
        client = llm_client(100, 100, 100, 100, 100, 450)  # 4.5x: a near miss
        for _ in range(6):
            ask(client)
    with otel_agents.agent("writer"):
        client = llm_client(10, 5000)  # a huge call, but no baseline for "writer" yet
        ask(client)
        ask(client)
    assert flagged(telemetry, SPIKE) == []


def test_the_run_passing_its_budget(telemetry: Any) -> None:
    reinstrument(telemetry, detectors={"run_budget_usd": 0.25})
    client = llm_client(100, 100, 100, 100)
    with otel_agents.agent("run") as run:
        for _ in range(4):
            ask(client)
    (span,) = flagged(telemetry, BUDGET)  # only the call that crossed it
    (event,) = anomaly_events(span)
    assert event[sc.DETECTOR_OBSERVED] == pytest.approx(0.3)
    assert event[sc.DETECTOR_THRESHOLD] == 0.25
    assert event[sc.RUN_ID] == run.run_id
    assert root(telemetry)[sc.RUN_COST_USD] == pytest.approx(0.4)
    assert root(telemetry)[sc.RUN_ANOMALIES] == 1


def test_spending_exactly_the_budget_is_fine(telemetry: Any) -> None:
    reinstrument(telemetry, detectors={"run_budget_usd": 0.3, "run_budget_tokens": 300})
    client = llm_client(100, 100, 100)
    with otel_agents.agent("run"):
        for _ in range(3):
            ask(client)
    assert flagged(telemetry, BUDGET) == []


def test_token_budget_and_declared_tool_costs_count(telemetry: Any) -> None:
    @otel_agents.tool(cost_usd=2.0)
    def screen(vendor_id: str) -> str:
        return "clear"

    reinstrument(telemetry, detectors={"run_budget_usd": 3.0, "run_budget_tokens": 150})
    client = llm_client(100, 100)
    with otel_agents.agent("run"):
        ask(client)
        ask(client)  # 200 tokens: over the token budget
        screen("v-1")
        screen("v-2")  # $4.20 in all: over the USD budget
    spans = flagged(telemetry, BUDGET)
    assert [s.name for s in spans] == ["chat priced-test-model", "execute_tool screen"]
    assert anomaly_events(spans[1])[0][sc.DETECTOR_OBSERVED] == pytest.approx(4.2)


# -- handoff ping-pong -----------------------------------------------------------------


def bounce(targets: list[tuple[str, str]]) -> None:
    with otel_agents.agent("orchestrator"):
        for source, target in targets:
            with otel_agents.handoff(to=target, source=source, payload={"vendor_id": "v-1"}):
                pass


def test_work_bouncing_between_two_agents(telemetry: Any) -> None:
    reinstrument(telemetry)
    bounce([("intake", "provisioning"), ("provisioning", "intake")] * 3)
    (span,) = flagged(telemetry, PING_PONG)  # once per pair and run
    (event,) = anomaly_events(span)
    assert event[sc.DETECTOR_MESSAGE] == "work bounced 4 times between provisioning and intake"
    assert attrs(span)[sc.HANDOFF_FROM] == "provisioning"


def test_three_bounces_or_a_chain_are_fine(telemetry: Any) -> None:
    reinstrument(telemetry)
    bounce([("intake", "provisioning"), ("provisioning", "intake"), ("intake", "provisioning")])
    bounce([("a", "b"), ("b", "a"), ("a", "c"), ("c", "a"), ("a", "b")])
    assert flagged(telemetry, PING_PONG) == []


def test_nested_handoffs_bouncing(telemetry: Any) -> None:
    reinstrument(telemetry, detectors={"ping_pong_handoffs": 3})
    with (
        otel_agents.agent("intake"),
        otel_agents.handoff(to="provisioning"),
        otel_agents.agent("provisioning"),
        otel_agents.handoff(to="intake"),
        otel_agents.agent("intake"),
        otel_agents.handoff(to="provisioning"),
    ):
        pass
    assert len(flagged(telemetry, PING_PONG)) == 1


def test_bounce_counting() -> None:
    assert bounces([]) == 0
    assert bounces([("a", "b")]) == 1
    assert bounces([("x", "y"), ("a", "b"), ("b", "a"), ("a", "b")]) == 3
    assert bounces([("a", "b"), ("a", "b")]) == 1


# -- runaway run -----------------------------------------------------------------------


def test_more_tool_calls_than_the_bound(telemetry: Any) -> None:
    reinstrument(telemetry, detectors={"runaway_tool_calls": 10})
    with otel_agents.agent("run"):
        for index in range(12):
            lookup(f"v-{index}")
    (span,) = flagged(telemetry, RUNAWAY)
    assert (
        anomaly_events(span)[0][sc.DETECTOR_MESSAGE]
        == "the run made more than 10 tool calls (11 so far)"
    )


def test_exactly_the_bound_is_fine(telemetry: Any) -> None:
    reinstrument(telemetry, detectors={"runaway_tool_calls": 10, "runaway_llm_calls": 3})
    client = llm_client(10, 10, 10)
    with otel_agents.agent("run"):
        for index in range(10):
            lookup(f"v-{index}")
        for _ in range(3):
            ask(client)
    assert flagged(telemetry, RUNAWAY) == []


def test_more_llm_calls_than_the_bound(telemetry: Any) -> None:
    reinstrument(telemetry, detectors={"runaway_llm_calls": 2})
    client = llm_client(10, 10, 10)
    with otel_agents.agent("run"):
        for _ in range(3):
            ask(client)
    (span,) = flagged(telemetry, RUNAWAY)
    assert span.name == "chat priced-test-model"


def test_a_run_that_goes_on_too_long(telemetry: Any) -> None:
    reinstrument(telemetry, detectors={"runaway_seconds": 0.05})
    with otel_agents.agent("run"):
        lookup("v-1")
        time.sleep(0.08)
    (span,) = flagged(telemetry, RUNAWAY)
    assert span.name == "invoke_agent run"  # noticed as the run ended
    assert root(telemetry)[sc.RUN_ANOMALIES] == 1


def test_a_run_within_its_time(telemetry: Any) -> None:
    reinstrument(telemetry, detectors={"runaway_seconds": 30})
    with otel_agents.agent("run"):
        lookup("v-1")
    assert flagged(telemetry, RUNAWAY) == []


# -- configuration ---------------------------------------------------------------------


def test_detectors_can_be_switched_off(telemetry: Any) -> None:
    reinstrument(telemetry, detectors=False)
    with otel_agents.agent("run"):
        for _ in range(6):
            lookup("v-1")
    assert flagged(telemetry, RETRY) == []
    assert anomaly_counts(telemetry) == {}


def test_a_failing_detector_stops_no_other(telemetry: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from otel_agents.detectors import RetryLoopDetector

    def broken(self: Any, invocation: Any) -> None:
        raise RuntimeError("injected")

    monkeypatch.setattr(RetryLoopDetector, "on_tool_end", broken)
    reinstrument(telemetry)  # detectors are bundled now, with the broken one among them

    @otel_agents.tool
    def fetch() -> dict[str, str]:
        return {"error": "vendor not found"}

    with otel_agents.agent("run"):
        assert fetch() == {"error": "vendor not found"}
    assert len(flagged(telemetry, SILENT)) == 1


def test_settings_from_the_environment(telemetry: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_AGENTS_DETECTORS", "retry_loop,runaway_run")
    monkeypatch.setenv("OTEL_AGENTS_DETECTOR_RETRY_LOOP_CALLS", "2")
    monkeypatch.setenv("OTEL_AGENTS_DETECTOR_RUNAWAY_SECONDS", "none")
    reinstrument(telemetry)

    @otel_agents.tool
    def fetch() -> dict[str, str]:
        return {"error": "boom"}

    with otel_agents.agent("run"):
        fetch()
        fetch()
    assert len(flagged(telemetry, RETRY)) == 1
    assert flagged(telemetry, SILENT) == []  # not enabled


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("OTEL_AGENTS_DETECTORS", "retry_loop,typo", r"unknown detector\(s\) typo"),
        ("OTEL_AGENTS_DETECTOR_RETRY_LOOP_CALLS", "five", "is not a valid int"),
        ("OTEL_AGENTS_DETECTOR_PING_PONG_HANDOFFS", "none", "cannot be none"),
        ("OTEL_AGENTS_DETECTOR_COST_SPIKE_FACTOR", "-1", "must be 0 or more"),
    ],
)
def test_bad_settings_fail_at_start_up(
    telemetry: Any, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        reinstrument(telemetry)


def test_unknown_setting_in_the_argument() -> None:
    with pytest.raises(ConfigError, match="unknown detector setting 'retry_calls'"):
        DetectorSettings.load({"retry_calls": 3}, environ={})


def test_the_cost_baseline_median_matches_statistics_median() -> None:
    import random
    import statistics
    from collections import deque

    from otel_agents.detectors.cost import _Window

    rng = random.Random(7)
    for size in (1, 2, 5, 20):
        window, reference = _Window(size), deque[float](maxlen=size)
        for _ in range(200):
            cost = rng.choice([0.001, 0.002, 0.5, rng.random()])  # repeats on purpose
            window.add(cost)
            reference.append(cost)
            assert window.median() == statistics.median(reference)
            assert sorted(reference) == window.sorted
