"""The demo's vendor-onboarding workflow: two agents, five tools, one scripted model.

An intake agent reads a vendor's record and hands a summary to a provisioning agent, which
verifies the bank account, creates the account and grants permissions. The agents are a
minimal tool-calling loop on the real `openai` SDK; the story (a rejected handoff, a
failing tool retried until the retry limit escalates, an expensive call, an approval and a
denied grant) comes from the scripted model and the demo policy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import otel_agents
from otel_agents.demo import billing
from otel_agents.demo.scripted_model import Script, ToolCall, Turn
from otel_agents.errors import Intervention

MODEL = "gpt-4.1-mini"
VENDOR_ID = "V-1042"

VENDORS: dict[str, dict[str, Any]] = {
    VENDOR_ID: {
        "vendor_id": VENDOR_ID,
        "name": "Acme Robotics GmbH",
        "country": "DE",
        "iban": "DE89370400440532013000",
        "contact": "ap@acme-robotics.example",
    }
}
TAX_IDS = {VENDOR_ID: "DE811907980"}
ACCOUNT_ID = f"acct_{VENDOR_ID.lower()}"


# -- tools -----------------------------------------------------------------------------


@otel_agents.tool(tags=["reads:vendor_db"], reversible=True)
def fetch_vendor_record(vendor_id: str) -> dict[str, Any]:
    """Read a vendor's intake form."""
    return dict(VENDORS[vendor_id])


@otel_agents.tool(tags=["reads:tax_registry"], reversible=True)
def lookup_tax_id(vendor_id: str) -> dict[str, str]:
    """Look a vendor's VAT id up in the tax registry."""
    return {"vendor_id": vendor_id, "tax_id": TAX_IDS[vendor_id]}


@otel_agents.tool(tags=["external:bank_api"], reversible=True)
def verify_bank_account(iban: str) -> dict[str, Any]:
    """Check an IBAN with the bank's verification API."""
    raise TimeoutError(f"bank verification API timed out for {iban[:4]}…")


@otel_agents.tool(tags=["writes:customer_db"], reversible=False, impact_scope="one_account")
def create_account(vendor_id: str, name: str, plan: str) -> dict[str, str]:
    """Create the vendor's account in the customer database."""
    return {"account_id": ACCOUNT_ID, "plan": plan, "status": "active"}


@otel_agents.tool(tags=["grants:iam"], reversible=True)
def grant_permission(account_id: str, role: str) -> dict[str, str]:
    """Grant a role on an account."""
    return {"account_id": account_id, "role": role, "granted": "yes"}


TOOLS: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (
        fetch_vendor_record,
        lookup_tax_id,
        verify_bank_account,
        create_account,
        grant_permission,
    )
}
# The tool the billing MCP server serves (see `billing`), when the `mcp` SDK is installed.
if billing.available():
    TOOLS[billing.TOOL] = billing.set_up_billing


def tool_specs(names: list[str]) -> list[dict[str, Any]]:
    """The Chat Completions `tools` parameter for the named tools."""
    schemas: dict[str, dict[str, Any]] = {
        "fetch_vendor_record": {"vendor_id": "string"},
        "lookup_tax_id": {"vendor_id": "string"},
        "verify_bank_account": {"iban": "string"},
        "create_account": {"vendor_id": "string", "name": "string", "plan": "string"},
        "grant_permission": {"account_id": "string", "role": "string"},
        billing.TOOL: billing.PARAMETERS,
    }
    descriptions = {billing.TOOL: billing.DESCRIPTION}
    return [
        {
            "type": "function",
            "function": {
                "name": name,
                "description": descriptions.get(name) or (TOOLS[name].__doc__ or "").strip(),
                "parameters": {
                    "type": "object",
                    "properties": {k: {"type": t} for k, t in schemas[name].items()},
                    "required": list(schemas[name]),
                },
            },
        }
        for name in names
    ]


# -- the scripted model's side of the story ---------------------------------------------


def demo_script(with_mcp: bool = False) -> Script:
    """The model's answers: what each agent "decides" at each turn, and the tokens it used."""
    iban = VENDORS[VENDOR_ID]["iban"]
    draft = {"vendor_id": VENDOR_ID, "name": "Acme Robotics GmbH", "iban": iban, "plan": "standard"}
    summary = {**draft, "tax_id": TAX_IDS[VENDOR_ID]}
    verify = ToolCall("verify_bank_account", {"iban": iban})
    return Script(
        turns={
            "intake": [
                Turn("I'll read the vendor's intake form first.",
                     [ToolCall("fetch_vendor_record", {"vendor_id": VENDOR_ID})]),
                Turn(json.dumps(draft)),
                Turn("Provisioning needs the tax id; looking it up in the tax registry.",
                     [ToolCall("lookup_tax_id", {"vendor_id": VENDOR_ID})]),
                Turn(json.dumps(summary)),
            ],
            "provisioning": [
                Turn("Before creating anything I must verify the vendor's bank account.", [verify]),
                Turn("The bank API timed out; trying again.", [verify]),
                Turn("Still timing out; one more attempt.", [verify]),
                Turn("It must be a transient outage; trying once more.", [verify]),
                Turn("Bank verification was escalated to a human. Meanwhile I re-read the "
                     "vendor's complete document history to be sure: it is consistent, so I "
                     "create the account on the standard plan.",
                     [ToolCall("create_account", {"vendor_id": VENDOR_ID, "name": summary["name"],
                                                  "plan": "standard"})],
                     prompt_tokens=180_000, completion_tokens=4_000),
                Turn("The vendor's finance team wants full control, so I grant the admin role.",
                     [ToolCall("grant_permission", {"account_id": ACCOUNT_ID, "role": "admin"})]),
                Turn("Admin was denied by policy; granting billing access instead.",
                     [ToolCall("grant_permission", {"account_id": ACCOUNT_ID,
                                                    "role": "billing_viewer"})]),
                *(_billing_turns() if with_mcp else []),
                Turn(f"Account {ACCOUNT_ID} is active with billing_viewer access; bank "
                     "verification waits for a human."),
            ],
        }
    )  # fmt: skip


def _billing_turns() -> list[Turn]:
    """Invoicing is set up through the billing MCP server (`otel-agents demo --mcp`)."""
    arguments = {"account_id": ACCOUNT_ID, "plan": "net-30"}
    text = "Last, invoicing: the billing server sets the account up on net-30 terms."
    return [Turn(text, [ToolCall(billing.TOOL, arguments)])]


# -- a minimal tool-calling agent ------------------------------------------------------

Narrator = Callable[[str], None]


def run_agent(
    client: Any,
    name: str,
    instructions: str,
    task: str,
    tools: list[str],
    narrate: Narrator,
    *,
    max_steps: int = 10,
) -> str:
    """Call the model, run the tools it asks for, feed results back, until it answers."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": instructions},
        {"role": "user", "content": task},
    ]

    def say(text: str) -> None:
        narrate(f"{name:<13} {text}")

    with otel_agents.agent(name):
        for _ in range(max_steps):
            completion = client.chat.completions.create(
                model=MODEL, messages=messages, tools=tool_specs(tools), user=name
            )
            message = completion.choices[0].message
            messages.append(message.model_dump(exclude_none=True))
            if not message.tool_calls:
                return str(message.content or "")
            for call in message.tool_calls:
                result = run_tool(call.id, call.function.name, call.function.arguments, say)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    return ""


def run_tool(call_id: str, name: str, arguments: str, narrate: Narrator) -> str:
    """Run one requested tool; failures and policy stops go back to the model as text,
    the way agent frameworks report a tool's exception to the model."""
    try:
        with otel_agents.tool_call_id(call_id):
            result = TOOLS[name](**json.loads(arguments))
    except Intervention as stop:
        narrate(f"{name}: stopped by policy ({type(stop).__name__})")
        return json.dumps({"error": str(stop), "stopped_by_policy": True})
    except Exception as exc:
        narrate(f"{name}: failed ({type(exc).__name__})")
        return json.dumps({"error": f"{type(exc).__name__}: {exc}"})
    narrate(f"{name}: ok")
    return json.dumps(result)


def receiver_checks(boundary: otel_agents.Handoff, summary: Mapping[str, Any]) -> None:
    """What the provisioning agent checks before it accepts a vendor summary."""
    boundary.check("has_tax_id", bool(summary.get("tax_id")), "tax_id missing")
    boundary.check("has_iban", bool(summary.get("iban")), "iban missing")
    boundary.check("known_plan", summary.get("plan") in ("standard", "premium"), "unknown plan")
