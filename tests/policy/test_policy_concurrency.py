"""Many runs at once, in threads and in asyncio: attempts, failure counts, spend and approvals
stay with their own run."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from policy_helpers import attrs, reinstrument, spans_named

import otel_agents
from otel_agents import semconv as sc
from otel_agents.policy import (
    ApprovalRejected,
    ApprovalRequest,
    Limit,
    Limits,
    Mode,
    Policy,
    ToolCallDenied,
    ToolCallEscalated,
    Verdict,
)

LIMITS = Policy(
    limits=Limits(
        max_failures=Limit(2, Verdict.ESCALATE),
        per_run_usd=Limit(10.0, Verdict.DENY),
    ),
    mode=Mode.ENFORCE,
)


@otel_agents.tool(cost_usd=3.0)
def buy(item: str) -> str:
    return item


@otel_agents.tool
def unreliable(key: str) -> str:
    raise ConnectionError(key)


def one_run(index: int) -> tuple[str | None, list[str]]:
    """A run that buys 4 items at $3 (the 4th passes $10) and retries a failing call 3 times
    (the 3rd attempt escalates)."""
    outcomes: list[str] = []
    with otel_agents.agent(f"worker-{index}") as run:
        for item in range(4):
            try:
                buy(f"item-{item}")
                outcomes.append("bought")
            except ToolCallDenied:
                outcomes.append("denied")
        for _ in range(3):
            try:
                unreliable("same-key")  # the same arguments in every run
            except ConnectionError:
                outcomes.append("failed")
            except ToolCallEscalated:
                outcomes.append("escalated")
    return run.run_id, outcomes


EXPECTED = ["bought", "bought", "bought", "denied", "failed", "failed", "escalated"]


def check_runs(telemetry: Any, results: list[tuple[str | None, list[str]]]) -> None:
    assert len({run_id for run_id, _ in results}) == len(results)
    assert all(outcomes == EXPECTED for _, outcomes in results)
    for run_id, _ in results:
        spans = [
            s
            for s in spans_named(telemetry, "execute_tool unreliable")
            if attrs(s)[sc.RUN_ID] == run_id
        ]
        assert sorted(attrs(s)[sc.TOOL_CALL_ATTEMPT] for s in spans) == [1, 2, 3]


def test_many_runs_in_threads(telemetry: Any) -> None:
    reinstrument(telemetry, policy=LIMITS)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one_run, range(24)))
    check_runs(telemetry, results)


async def test_many_runs_in_asyncio(telemetry: Any) -> None:
    reinstrument(telemetry, policy=LIMITS)

    @otel_agents.tool(cost_usd=3.0)
    async def abuy(item: str) -> str:
        await asyncio.sleep(0)
        return item

    @otel_agents.tool
    async def aunreliable(key: str) -> str:
        await asyncio.sleep(0)
        raise ConnectionError(key)

    async def run(index: int) -> tuple[str | None, list[str]]:
        outcomes: list[str] = []
        async with otel_agents.agent(f"task-{index}") as agent_run:
            for item in range(4):
                try:
                    await abuy(f"item-{item}")
                    outcomes.append("bought")
                except ToolCallDenied:
                    outcomes.append("denied")
            for _ in range(3):
                try:
                    await aunreliable("same-key")
                except ConnectionError:
                    outcomes.append("failed")
                except ToolCallEscalated:
                    outcomes.append("escalated")
        return agent_run.run_id, outcomes

    results = await asyncio.gather(*(run(i) for i in range(30)))
    assert len({run_id for run_id, _ in results}) == 30
    assert all(outcomes == EXPECTED for _, outcomes in results)


def test_concurrent_calls_of_one_run_cannot_overspend(telemetry: Any) -> None:
    """Threads of the same run race for the last dollars: decide-and-book is atomic."""
    reinstrument(telemetry, policy=LIMITS)
    barrier = threading.Barrier(8)

    def racer(item: int) -> str:
        barrier.wait()
        try:
            return buy(f"item-{item}")
        except ToolCallDenied:
            return "denied"

    with otel_agents.agent("racing") as run, ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(racer, range(8)))
    assert outcomes.count("denied") == 5  # only three $3 purchases fit under $10
    assert run.ledger is not None and run.ledger.totals.spent_usd == pytest.approx(9.0)


def test_concurrent_approvals_answer_their_own_call(telemetry: Any) -> None:
    policy = Policy(mode=Mode.ENFORCE)  # irreversible tools need approval by default

    @otel_agents.tool(reversible=False)
    def close_account(account_id: str) -> str:
        return account_id

    def approver(request: ApprovalRequest) -> bool:
        return request.arguments is not None and '"acct-even' in request.arguments

    reinstrument(telemetry, policy=policy, approver=approver)

    def run(index: int) -> str:
        kind = "even" if index % 2 == 0 else "odd"
        with otel_agents.agent(f"closer-{index}"):
            try:
                return close_account(f"acct-{kind}-{index}")
            except ApprovalRejected:
                return "rejected"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(run, range(16)))
    assert outcomes == [f"acct-even-{i}" if i % 2 == 0 else "rejected" for i in range(16)]
    statuses = sorted(
        attrs(s)[sc.APPROVAL_STATUS] for s in spans_named(telemetry, "await_approval close_account")
    )
    assert statuses == ["approved"] * 8 + ["rejected"] * 8
