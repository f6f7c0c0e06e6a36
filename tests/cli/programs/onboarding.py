"""A vendor-onboarding run, traced as a user would trace it, for the CLI tests.

    python onboarding.py [--crash] [--agent NAME] [--runs N]

Agents, tools, decisions and handoffs go through the public API; LLM calls through the
generic LLM-call recorder that every client adapter feeds (so cost, tokens, reasoning and
the links from tool calls to the decisions behind them are the real ones); verdicts,
approvals and findings come from the real policy engine and detectors, configured below
so that the story stays the same whatever the default thresholds.

The story (one run): intake reads the vendor record and hands a summary to provisioning,
which rejects it (no tax id); intake looks the tax id up and hands over again; provisioning
tries the bank check three times (a retry loop), creates the account after an approval,
is denied an admin grant and grants a billing role instead. One expensive LLM call is a
cost spike. Prints the run id. With `--crash`, the root agent ends with an error.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import otel_agents
from otel_agents import semconv as sc
from otel_agents.core.inference import LLMCall, LLMRequest, LLMResponse, ToolCallRequest
from otel_agents.errors import Intervention
from otel_agents.policy import ApprovalDecision, ApprovalRequest, Approver
from otel_agents.pricing import TokenUsage

PRICES = {"gpt-4.1-mini": {"input": 0.4, "output": 1.6}}
VENDOR = {"vendor_id": "V-1042", "name": "Acme Robotics GmbH", "iban": "DE89370400440532013000"}
LONG_REASONING = (
    "Bank verification is escalated to a human. I re-read the vendor's full history, every"
    " document in the intake folder and the sanctions screening result: everything is"
    " complete and consistent, so I create its account on the standard plan now. "
) * 3


# The decision rights of the story, through the real policy engine.
POLICY = """
version: 1
mode: enforce
rules:
  - id: no-admin-grants
    match: {tool: grant_permission, arguments: {role: admin}}
    verdict: deny
    reason: admin roles need a security review
  - id: irreversible-writes
    match: {reversible: false}
    verdict: require_approval
"""
# Only the detectors the story is about, with a baseline short enough for one run.
DETECTORS = {"enabled": ["retry_loop", "cost_spike"], "cost_spike_min_samples": 3}


class SlackApprover(Approver):
    """A pluggable approver, as a team would write one: Alice answers on Slack."""

    channel = "slack"

    def request(self, request: ApprovalRequest, timeout: float) -> ApprovalDecision | None:
        time.sleep(0.02)
        return ApprovalDecision(approved=True, approver="alice@example.com")


# -- tools ------------------------------------------------------------------------------


@otel_agents.tool(tags=["reads:vendor_db"])
def fetch_vendor_record(vendor_id: str) -> dict[str, Any]:
    """Read a vendor's intake form."""
    return dict(VENDOR)


@otel_agents.tool
def lookup_tax_id(vendor_id: str) -> dict[str, str]:
    """Look the VAT id up in the tax registry."""
    return {"vendor_id": vendor_id, "tax_id": "DE811907980"}


@otel_agents.tool(tags=["external:bank_api"])
def verify_bank_account(iban: str) -> dict[str, Any]:
    """Check an IBAN with the bank."""
    raise TimeoutError(f"bank verification API timed out for {iban[:4]}")


@otel_agents.tool(tags=["writes:customer_db"], reversible=False)
def create_account(vendor_id: str, name: str, plan: str) -> dict[str, str]:
    """Create the vendor's account."""
    return {"account_id": f"acct_{vendor_id.lower()}", "plan": plan}


@otel_agents.tool(tags=["writes:iam"])
def grant_permission(account_id: str, role: str) -> dict[str, str]:
    """Grant a role on an account."""
    return {"account_id": account_id, "role": role, "granted": "yes"}


TOOLS = {
    f.__name__: f
    for f in (
        fetch_vendor_record,
        lookup_tax_id,
        verify_bank_account,
        create_account,
        grant_permission,
    )
}


# -- a model turn and a tool-calling step -------------------------------------------------

_call_ids = iter(range(1, 1_000_000))


def model_turn(
    text: str,
    tools: list[tuple[str, dict[str, Any]]] | None = None,
    *,
    model: str = "gpt-4.1-mini",
    tokens: tuple[int, int] = (400, 60),
    thinking: str | None = None,
) -> list[ToolCallRequest]:
    """One LLM call through the generic recorder; returns the tool calls it asked for."""
    calls = [
        ToolCallRequest(f"call_{next(_call_ids)}", name, json.dumps(args))
        for name, args in tools or []
    ]
    parts: list[dict[str, Any]] = []
    if thinking:
        parts.append({"type": "reasoning", "content": thinking})
    parts.append({"type": "text", "content": text})
    parts += [
        {"type": "tool_call", "id": c.call_id, "name": c.name, "arguments": c.arguments}
        for c in calls
    ]
    finish = "tool_calls" if calls else "stop"
    request = LLMRequest(
        provider="openai",
        model=model,
        server_address="api.openai.example",
        input_messages=[{"role": "user", "parts": [{"type": "text", "content": "go on"}]}],
    )
    call = LLMCall.start(request)
    assert call is not None
    call.finish(
        LLMResponse(
            response_id=f"chatcmpl-{next(_call_ids)}",
            response_model=model,
            finish_reasons=[finish],
            usage=TokenUsage(*tokens),
            tool_calls=calls,
            reasoning=thinking,
            reasoning_source=sc.DecisionReasoningSourceValues.THINKING if thinking else None,
            text=text,
            output_messages=[{"role": "assistant", "parts": parts, "finish_reason": finish}],
        )
    )
    return calls


def act(calls: list[ToolCallRequest]) -> list[Any]:
    """Run the requested tools the way an agent loop does: errors go back to the model."""
    results = []
    for call in calls:
        try:
            with otel_agents.tool_call_id(call.call_id):
                results.append(TOOLS[call.name](**json.loads(call.arguments)))
        except (Intervention, TimeoutError) as stop:
            results.append({"error": str(stop)})
    return results


def story(crash: bool, root: str) -> str:
    run = otel_agents.agent(root, description="Onboards a new vendor")
    try:
        with run as handle:
            onboard(crash)
    except RuntimeError:
        pass
    return handle.run_id or ""


def onboard(crash: bool) -> None:
    with otel_agents.agent("intake"):
        act(
            model_turn(
                "I'll read the vendor's intake form first.",
                [("fetch_vendor_record", {"vendor_id": VENDOR["vendor_id"]})],
            )
        )
        summary = dict(VENDOR, plan="standard")
        model_turn(json.dumps(summary))
    with otel_agents.handoff(to="provisioning", payload=summary) as boundary:
        boundary.check("has_tax_id", "tax_id" in summary, "tax_id missing")
        boundary.check("has_iban", "iban" in summary)
        boundary.reject("vendor summary incomplete: has_tax_id")
    with otel_agents.agent("intake"):
        found = act(
            model_turn(
                "The tax id was missing; looking it up in the registry.",
                [("lookup_tax_id", {"vendor_id": VENDOR["vendor_id"]})],
            )
        )
        summary["tax_id"] = found[0]["tax_id"]
    with otel_agents.handoff(to="provisioning", payload=summary) as boundary:
        boundary.check("has_tax_id", "tax_id" in summary)
        boundary.accept("summary complete")
        with otel_agents.agent("provisioning"):
            provision()
    if crash:
        raise RuntimeError("onboarding aborted by the operator")


def provision() -> None:
    bank = [("verify_bank_account", {"iban": VENDOR["iban"]})]
    act(model_turn("Before creating anything I must verify the bank account.", bank))
    act(model_turn("The bank API timed out; trying again.", bank))
    act(model_turn("Still failing; one more attempt.", bank))
    account = {"vendor_id": VENDOR["vendor_id"], "name": VENDOR["name"], "plan": "standard"}
    act(
        model_turn(
            "Creating the account on the standard plan.",
            [("create_account", account)],
            tokens=(180_000, 4_000),
            thinking=LONG_REASONING,
        )
    )
    act(
        model_turn(
            "The vendor's finance team needs full control: granting admin.",
            [("grant_permission", {"account_id": "acct_v-1042", "role": "admin"})],
        )
    )
    act(
        model_turn(
            "Admin was denied by policy; granting billing access instead.",
            [("grant_permission", {"account_id": "acct_v-1042", "role": "billing_viewer"})],
        )
    )
    model_turn("Account acct_v-1042 is active with billing_viewer access.")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--crash", action="store_true")
    parser.add_argument("--agent", default="vendor-onboarding")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    otel_agents.instrument(
        prices=PRICES, policy=POLICY, approver=SlackApprover(), detectors=DETECTORS
    )
    for _ in range(args.runs):
        print(story(args.crash, args.agent), flush=True)


if __name__ == "__main__":
    main()
