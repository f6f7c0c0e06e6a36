"""Detector state belongs to its run: many runs at once, in threads and asyncio, each just
under (or just over) a threshold, fire exactly for the runs that crossed it."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from detector_helpers import anomaly_counts, attrs, flagged, reinstrument

import otel_agents
from otel_agents import semconv as sc

RETRY = sc.DetectorNameValues.RETRY_LOOP
RUNAWAY = sc.DetectorNameValues.RUNAWAY_RUN
PING_PONG = sc.DetectorNameValues.HANDOFF_PING_PONG


@otel_agents.tool
def lookup(vendor_id: str) -> str:
    return vendor_id


def one_run(index: int) -> str | None:
    """Even runs repeat a call 5 times (a retry loop); odd runs 4 times (a near miss). All
    use the same arguments, so any sharing between runs would push odd runs over."""
    repeats = 5 if index % 2 == 0 else 4
    with otel_agents.agent(f"worker-{index}") as run:
        for _ in range(repeats):
            lookup("v-shared")
        for hop in range(3):  # 3 bounces: a ping-pong near miss in every run
            source, target = ("a", "b") if hop % 2 == 0 else ("b", "a")
            with otel_agents.handoff(to=target, source=source):
                pass
    return run.run_id


def check(telemetry: Any, run_ids: list[str | None]) -> None:
    assert len(set(run_ids)) == len(run_ids)
    flagged_runs = {attrs(s)[sc.RUN_ID] for s in flagged(telemetry, RETRY)}
    assert flagged_runs == {run_ids[i] for i in range(0, len(run_ids), 2)}
    assert anomaly_counts(telemetry) == {RETRY: len(run_ids) // 2}
    assert flagged(telemetry, PING_PONG) == [] and flagged(telemetry, RUNAWAY) == []
    for index, run_id in enumerate(run_ids):
        root = attrs(telemetry.span(f"invoke_agent worker-{index}"))
        assert root[sc.RUN_ID] == run_id
        assert root[sc.RUN_ANOMALIES] == (1 if index % 2 == 0 else 0)


def test_many_runs_in_threads(telemetry: Any) -> None:
    reinstrument(telemetry, detectors={"runaway_tool_calls": 5})
    with ThreadPoolExecutor(max_workers=8) as pool:
        run_ids = list(pool.map(one_run, range(40)))
    check(telemetry, run_ids)


async def test_many_runs_in_asyncio(telemetry: Any) -> None:
    reinstrument(telemetry, detectors={"runaway_tool_calls": 5})

    @otel_agents.tool
    async def alookup(vendor_id: str) -> str:
        await asyncio.sleep(0)
        return vendor_id

    async def run(index: int) -> str | None:
        repeats = 5 if index % 2 == 0 else 4
        async with otel_agents.agent(f"worker-{index}") as agent_run:
            for _ in range(repeats):
                await alookup("v-shared")
            for hop in range(3):
                source, target = ("a", "b") if hop % 2 == 0 else ("b", "a")
                async with otel_agents.handoff(to=target, source=source):
                    await asyncio.sleep(0)
        return agent_run.run_id

    run_ids = await asyncio.gather(*(run(i) for i in range(40)))
    check(telemetry, list(run_ids))
