"""`otel-agents demo`: a vendor-onboarding pipeline, end to end, offline, in seconds.

Nothing is faked below the model: the agents use the real `openai` SDK over real HTTP (to
a scripted model on 127.0.0.1), and every call goes through the real instrumentation, the
policy engine (`policy.yaml` beside this file) and the detectors, into the local store (and
to your collector as well when `OTEL_EXPORTER_OTLP_ENDPOINT` is set).

The story: the intake agent summarizes the vendor and hands off to provisioning, which
rejects the summary (no tax id); intake looks the tax id up and hands off again. The bank
check times out three times and the fourth attempt is escalated by the retry limit; one
huge model call trips the cost-spike and budget detectors; creating the account needs
finance's approval (auto-approved here, the approver recorded); an admin grant is denied;
a billing role is granted instead. With `mcp=True` (`otel-agents demo --mcp`), invoicing is
then set up through an MCP server (in memory), whose destructive tool needs approval too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["APPROVER", "DETECTORS", "POLICY_FILE", "DemoRun", "run_demo"]

POLICY_FILE = Path(__file__).with_name("policy.yaml")
APPROVER = "finance-oncall (demo auto-approval)"
# A short baseline and a small budget, so that one run is enough to show both detectors.
DETECTORS: dict[str, Any] = {"cost_spike_min_samples": 3, "run_budget_usd": 0.05}

Narrator = Callable[[str], None]


@dataclass(frozen=True)
class DemoRun:
    run_id: str
    trace_id: str


def run_demo(narrate: Narrator, mcp: bool = False) -> DemoRun:
    """Instrument (content capture on, the demo policy, an auto-approver), run the story,
    and flush, so that the store holds the whole run when this returns."""
    import otel_agents
    from otel_agents.store import exporter

    exporter.announce_new_store = False  # the demo says where its run went itself
    otel_agents.instrument(
        capture_content=True,
        policy=POLICY_FILE,
        approver=_auto_approver(narrate),
        detectors=DETECTORS,
    )
    try:
        return _onboard(narrate, mcp)
    finally:
        otel_agents.flush()


def _auto_approver(narrate: Narrator) -> Callable[[Any], Any]:
    from otel_agents.policy import ApprovalDecision

    def approve(request: Any) -> ApprovalDecision:
        narrate(f"{request.agent or '?':<13} {request.tool}: approval requested ({request.rule})")
        return ApprovalDecision(True, approver=APPROVER, reason="demo: approved automatically")

    return approve


def _onboard(narrate: Narrator, mcp: bool = False) -> DemoRun:
    import openai

    import otel_agents
    from otel_agents.demo import billing
    from otel_agents.demo.scripted_model import ScriptedModelServer
    from otel_agents.demo.workflow import VENDOR_ID, demo_script, run_agent

    with ScriptedModelServer(demo_script(with_mcp=mcp)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="demo-key", max_retries=0)

        def intake(task: str) -> dict[str, Any]:
            tools = ["fetch_vendor_record", "lookup_tax_id"]
            answer = run_agent(client, "intake", _INTAKE, task, tools, narrate)
            return _as_summary(answer)

        def provisioning(summary: dict[str, Any]) -> str:
            tools = ["verify_bank_account", "create_account", "grant_permission"]
            tools += [billing.TOOL] if mcp else []  # over MCP
            return run_agent(
                client, "provisioning", _PROVISIONING, json.dumps(summary), tools, narrate
            )

        with otel_agents.agent("vendor-onboarding", description="Onboards a new vendor") as run:
            summary = intake(f"Onboard vendor {VENDOR_ID}.")
            for _attempt in range(3):
                rejection = _hand_off(summary, narrate)
                if rejection is None:
                    provisioning(summary)
                    break
                summary = intake(f"Provisioning rejected your summary: {rejection}.")
        trace_id = format(run.span.get_span_context().trace_id, "032x")
    return DemoRun(run_id=run.run_id or "", trace_id=trace_id)


def _hand_off(summary: dict[str, Any], narrate: Narrator) -> str | None:
    """Intake hands the summary to provisioning, which checks it; the rejection reason, if any."""
    import otel_agents
    from otel_agents.demo.workflow import receiver_checks

    with otel_agents.handoff(to="provisioning", source="intake", payload=summary) as boundary:
        receiver_checks(boundary, summary)
        if boundary.failed_checks:
            boundary.reject("summary incomplete: " + ", ".join(boundary.failed_checks))
            narrate(f"{'handoff':<13} intake -> provisioning: rejected ({boundary.reason})")
            return boundary.reason
        boundary.accept("all checks passed")
        narrate(f"{'handoff':<13} intake -> provisioning: accepted")
        return None


_INTAKE = "You read vendor intake forms and summarize them as JSON for provisioning."
_PROVISIONING = "You create vendor accounts and grant access. Verify the bank account first."


def _as_summary(answer: str) -> dict[str, Any]:
    try:
        parsed = json.loads(answer)
    except ValueError:
        return {"raw": answer}
    return parsed if isinstance(parsed, dict) else {"raw": answer}
