"""A small vendor-onboarding workflow traced with the core API, printed as a tree.

    python examples/quickstart.py

No model and no backend are needed: the "models" here are plain functions, and spans go to
an in-memory exporter that is printed at the end. (Set OTEL_EXPORTER_OTLP_ENDPOINT and drop
the provider set-up below to send the same spans to a collector.)
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_agents

os.environ.setdefault("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
otel_agents.instrument()


@otel_agents.tool
def fetch_vendor_record(vendor_id: str) -> dict[str, Any]:
    """Read the vendor's intake form."""
    return {
        "vendor_id": vendor_id,
        "name": "Acme GmbH",
        "tax_id": "DE123456789",
        "contact": "ops@acme.example",
        "api_key": "sk-live-should-never-be-seen-0123456789",
    }


@otel_agents.tool(tags=["writes:customer_db"], reversible=False, impact_scope="one_account")
def create_account(vendor_id: str, name: str) -> str:
    """Create the vendor's account."""
    return f"acct-{vendor_id}"


@otel_agents.tool(tags=["writes:iam"], reversible=True)
def grant_permission(account: str, role: str) -> bool:
    """Grant a role on an account."""
    if role == "admin":
        raise PermissionError("admin needs a human approver")
    return True


def main() -> None:
    with otel_agents.agent("intake", description="Summarizes vendor data"):
        record = fetch_vendor_record("v-42")
        summary = {k: record[k] for k in ("vendor_id", "name", "tax_id")}
        with (
            otel_agents.handoff(to="provisioning", payload=summary) as boundary,
            otel_agents.agent("provisioning", description="Creates accounts"),
        ):
            boundary.check("has_tax_id", bool(summary.get("tax_id")))
            boundary.accept()
            otel_agents.decision(
                "Vendor v-42 passed intake; creating its account.", tool_name="create_account"
            )
            account = create_account(summary["vendor_id"], summary["name"])
            otel_agents.decision(
                "Ops needs read access to reconcile invoices.", tool_name="grant_permission"
            )
            grant_permission(account, "viewer")
            with contextlib.suppress(PermissionError):
                grant_permission(account, "admin")
    print_tree(exporter.get_finished_spans())


def print_tree(spans: tuple[ReadableSpan, ...]) -> None:
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent else None
        children.setdefault(parent, []).append(span)

    def show(span: ReadableSpan, depth: int) -> None:
        attributes = dict(span.attributes or {})
        status = "ERROR" if span.status.status_code.name == "ERROR" else "ok"
        print(f"{'  ' * depth}{span.name}  [{status}]")
        for key in sorted(attributes):
            if key.startswith(("otel_agents.", "gen_ai.tool.call", "error.")):
                value = str(attributes[key])
                print(f"{'  ' * depth}    {key} = {value[:110]}")
        for child in children.get(span.context.span_id, []):
            show(child, depth + 1)

    for root in children.get(None, []):
        show(root, 0)


if __name__ == "__main__":
    main()
