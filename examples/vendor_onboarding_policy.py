"""Vendor onboarding under a policy: decision rights, approvals, contracts and detectors.

    python examples/vendor_onboarding_policy.py

Needs the `contracts` extra (jsonschema, for the JSON Schema tool contracts):
`pip install ".[contracts]"` from the checkout.

The policy is `examples/policies/vendor-onboarding.yaml` (explained in docs/policy.md). The
"model" is a plain script of the tool calls two agents decide to make, so no LLM and no
backend are needed; spans go to an in-memory exporter and the decision path is printed at
the end, with every verdict, approval and anomaly.

What happens:
- intake reads the vendor record, screens it (a paid call), and tries to send an email
  itself: denied, intake is read-only;
- the handoff to provisioning runs the receiver's declared checks;
- provisioning creates the account (finance approves it), grants a routine role (allowed),
  tries to grant admin (denied), tries a bulk grant (the approver says no), buys licences
  above the per-request limit (approved), retries a failing CRM sync until the policy
  escalates it (and the retry-loop detector flags it), gets a silently failed result from
  the welcome email, which a trial rule only observes.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_agents
from otel_agents import semconv as sc
from otel_agents.errors import Intervention
from otel_agents.policy import ApprovalDecision, ApprovalRequest, ToolContract

POLICY = Path(__file__).parent / "policies" / "vendor-onboarding.yaml"

# -- the tools -------------------------------------------------------------------------


@otel_agents.tool(tags=["reads:vendor_db"])
def fetch_vendor_record(vendor_id: str) -> dict[str, Any]:
    """Read the vendor's intake form."""
    return {
        "vendor_id": vendor_id,
        "name": "Acme GmbH",
        "tax_id": "DE123456789",
        "plan": "standard",
    }


@otel_agents.tool(tags=["reads:sanctions_api"], cost_usd=0.50)
def screen_sanctions(name: str) -> dict[str, Any]:
    """A paid sanctions-list lookup."""
    return {"name": name, "hits": 0, "screened": True}


@otel_agents.tool(tags=["sends:email"])
def send_welcome_email(vendor_id: str) -> dict[str, Any]:
    """Email the vendor's contact. The mail API reports failures in its body."""
    return {"ok": False, "error": "mailbox unavailable"}


@otel_agents.tool(
    tags=["writes:customer_db"],
    contract=ToolContract(
        input={
            "type": "object",
            "properties": {
                "vendor_id": {"type": "string", "pattern": "^v-[0-9]+$"},
                "plan": {"enum": ["standard", "premium"]},
            },
            "required": ["vendor_id", "plan"],
        },
        output={"type": "object", "required": ["account_id"]},
        reversible=False,
        impact_scope="vendor_account",
        rollback="deactivate_account(account_id)",
        failure_modes=["DuplicateAccount"],
    ),
)
def create_account(vendor_id: str, plan: str) -> dict[str, str]:
    """Create the vendor's account."""
    return {"account_id": f"acct-{vendor_id}"}


@otel_agents.tool(tags=["grants:iam"], impact_scope="staging", records="account_ids")
def grant_permission(account_ids: list[str], role: str) -> dict[str, Any]:
    """Grant a role on one or more accounts."""
    return {"granted": role, "accounts": len(account_ids)}


@otel_agents.tool(tags=["writes:billing"], cost_usd=lambda args: 4.0 * args["seats"])
def purchase_licences(account_id: str, seats: int) -> dict[str, Any]:
    """Buy seat licences for the vendor ($4 a seat)."""
    return {"account_id": account_id, "seats": seats}


@otel_agents.tool(tags=["writes:crm"])
def sync_crm(account_id: str) -> str:
    """Push the account to the CRM, which is down today."""
    raise ConnectionError("CRM timed out")


# -- the human on the other end ----------------------------------------------------------


def finance_desk(request: ApprovalRequest) -> ApprovalDecision:
    """Stands in for a person answering approvals (in production: FileApprover,
    HttpApprover or TerminalApprover)."""
    if request.tool == "grant_permission":
        return ApprovalDecision(False, "sec-oncall@example.com", "bulk grants need a ticket")
    return ApprovalDecision(True, "finance@example.com", "vendor contract on file")


# -- the agents --------------------------------------------------------------------------


def attempt(step: str, call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one tool call the way an agent framework does: a stop becomes the tool's
    answer to the model instead of crashing the agent."""
    try:
        result = call(*args, **kwargs)
        print(f"  {step}: ok -> {result}")
        return result
    except Intervention as stop:
        print(f"  {step}: STOPPED -> {type(stop).__name__}: {stop}")
    except Exception as exc:
        print(f"  {step}: failed -> {type(exc).__name__}: {exc}")
    return None


def main() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    metrics = InMemoryMetricReader()
    otel_agents.instrument(
        tracer_provider=provider,
        meter_provider=MeterProvider(metric_readers=[metrics]),
        configure_sdk=False,
        policy=POLICY,
        approver=finance_desk,
        detectors={"retry_loop_failures": 3},
    )

    with otel_agents.agent("intake", description="Summarizes vendor data"):
        print("intake:")
        record = attempt("fetch the record", fetch_vendor_record, "v-1042")
        screening = attempt("screen sanctions", screen_sanctions, record["name"])
        attempt("email the vendor itself", send_welcome_email, "v-1042")
        summary = {**record, "screened": screening["screened"]}

        checks = {
            "has_tax_id": lambda s: (bool(s.get("tax_id")), "tax_id missing"),
            "screened": lambda s: s.get("screened") is True,
        }
        with (
            otel_agents.handoff(to="provisioning", payload=summary, checks=checks, strict=True),
            otel_agents.agent("provisioning", description="Creates accounts, grants access"),
        ):
            print("provisioning:")
            account = attempt("create the account", create_account, "v-1042", summary["plan"])
            account_id = account["account_id"]
            attempt("grant viewer", grant_permission, [account_id], "viewer")
            attempt("grant admin", grant_permission, [account_id], "admin")
            bulk = [f"{account_id}-{n}" for n in range(12)]
            attempt("grant billing to 12 sub-accounts", grant_permission, bulk, "billing")
            attempt("buy 3 licences ($12)", purchase_licences, account_id, 3)
            for n in range(4):
                attempt(f"sync the CRM (try {n + 1})", sync_crm, account_id)
            attempt("send the welcome email", send_welcome_email, "v-1042")

    print("\nThe decision path:\n")
    print_tree(exporter.get_finished_spans())
    print_verdicts(metrics)
    otel_agents.uninstrument()


# -- printing ----------------------------------------------------------------------------

SHOWN = (
    sc.POLICY_VERDICT,
    sc.POLICY_RULE,
    sc.POLICY_MODE,
    sc.APPROVAL_STATUS,
    sc.APPROVAL_APPROVER,
    sc.CONTRACT_STATUS,
    sc.CONTRACT_VIOLATION,
    sc.TOOL_CALL_ATTEMPT,
    sc.TOOL_CALL_COST_USD,
    sc.TOOL_CALL_RECORDS,
    sc.HANDOFF_CHECKS_PASSED,
    sc.HANDOFF_CHECKS_FAILED,
    sc.HANDOFF_ACCEPTED,
    sc.ANOMALY,
    sc.RUN_TOOL_CALLS,
    sc.RUN_RETRIES,
    sc.RUN_ANOMALIES,
    sc.ERROR_TYPE,
)


def print_tree(spans: tuple[ReadableSpan, ...]) -> None:
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent else None
        children.setdefault(parent, []).append(span)

    def show(span: ReadableSpan, depth: int) -> None:
        attributes = dict(span.attributes or {})
        facts = ", ".join(
            f"{key.removeprefix('otel_agents.')}={_plain(attributes[key])}"
            for key in SHOWN
            if key in attributes
        )
        print(f"{'  ' * depth}{span.name}  {facts}".rstrip())
        for event in span.events:
            if event.name == sc.EVENT_ANOMALY and event.attributes:
                print(f"{'  ' * depth}  ! {event.attributes.get(sc.DETECTOR_MESSAGE)}")
        for child in children.get(span.context.span_id, []):
            show(child, depth + 1)

    for root in children.get(None, []):
        show(root, 0)


def print_verdicts(reader: InMemoryMetricReader) -> None:
    data = reader.get_metrics_data()
    print("\nPolicy verdicts (the otel_agents.policy.verdicts metric):")
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != sc.METRIC_POLICY_VERDICTS:
                    continue
                for point in metric.data.data_points:  # type: ignore[union-attr]
                    a = point.attributes or {}
                    print(
                        f"  {a.get(sc.GEN_AI_TOOL_NAME)}: {a.get(sc.POLICY_VERDICT)} "
                        f"({a.get(sc.POLICY_RULE)}, {a.get(sc.POLICY_MODE)}) x{point.value}"  # type: ignore[union-attr]
                    )


def _plain(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
