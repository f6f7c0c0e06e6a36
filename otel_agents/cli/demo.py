"""`otel-agents demo`: run the vendor-onboarding story, then say how to look at it."""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from collections import Counter
from typing import Any

from otel_agents.cli import EXIT_ERROR, EXIT_OK, Context, HelpFormatter
from otel_agents.cli import output as fmt
from otel_agents.cli.runs import SHORT_ID

_EXAMPLES = """\
examples:
  otel-agents demo                      run it; the run goes to the local store
  otel-agents demo --store /tmp/demo.db
  otel-agents demo --mcp                ... ending with a tool call over MCP
  OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 otel-agents demo
                                        also send it to a collector (docker-compose.yml)

Offline, no API key: the agents use the real openai SDK against a scripted model on
127.0.0.1, under a demo policy (otel_agents/demo/policy.yaml), with content capture on."""

# Where docker-compose.yml publishes the UIs; override when yours live elsewhere.
JAEGER_URL_ENV = "OTEL_AGENTS_JAEGER_URL"
GRAFANA_URL_ENV = "OTEL_AGENTS_GRAFANA_URL"
_OTLP_ENDPOINT_ENVS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "demo",
        parents=[common],
        help="run a multi-agent demo offline and record it",
        description=(
            "A vendor-onboarding pipeline in a few seconds: an intake agent hands a vendor\n"
            "summary to a provisioning agent, which creates an account and grants\n"
            "permissions. On the way: a rejected handoff, a tool retried until the retry\n"
            "limit escalates, a cost spike, a write approved by a (simulated) human and a\n"
            "denied grant."
        ),
        epilog=_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--mcp",
        action="store_true",
        help="end with invoicing set up through an MCP server (in memory; needs the mcp extra)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    needed = ("openai", "genai_prices", *(("mcp",) if args.mcp else ()))
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        ctx.err.write(
            f"otel-agents: error: the demo needs {' and '.join(missing)}: "
            f"pip install 'otel-agents[{'demo,mcp' if args.mcp else 'demo'}]'\n"
        )
        return EXIT_ERROR
    term = ctx.term
    otlp = _otlp_endpoint()
    _prepare_environment(ctx, otlp)
    term.line(term.style("otel-agents demo: onboarding vendor V-1042", "bold"))
    term.line(
        term.style(
            "two agents on the real openai SDK, a scripted model on 127.0.0.1, no API key\n", "dim"
        )
    )
    from otel_agents.demo import run_demo

    started = time.monotonic()
    outcome = run_demo(lambda text: term.line("  " + text), mcp=args.mcp)
    elapsed = time.monotonic() - started
    if not outcome.run_id:
        ctx.err.write("otel-agents: error: the demo run was not recorded\n")
        return EXIT_ERROR
    term.line()
    store_flag = f" --store {ctx.store_path}" if args.store else ""
    _print_summary(ctx, outcome.run_id, elapsed, store_flag)
    if otlp:
        _print_backend_hints(ctx, otlp, outcome.trace_id)
    return EXIT_OK


def _remote_counts() -> tuple[int, int, int]:
    """(exported, failed or dropped, still pending) spans over OTLP, after the flush."""
    from otel_agents.lifecycle import export_counts

    remote = [c for c in export_counts() if not c.local_store]
    exported = sum(c.exported for c in remote)
    lost = sum(c.dropped for c in remote)  # failed exports included
    return exported, lost, sum(c.pending for c in remote)


def _otlp_endpoint() -> str | None:
    for name in _OTLP_ENDPOINT_ENVS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def _prepare_environment(ctx: Context, otlp: str | None) -> None:
    """The run goes to the store the CLI reads, and next to OTLP when that is configured."""
    from otel_agents.store.settings import STORE_ENV, STORE_PATH_ENV

    os.environ[STORE_PATH_ENV] = str(ctx.store_path)
    if otlp:
        os.environ[STORE_ENV] = "always"
    os.environ.setdefault("OTEL_SERVICE_NAME", "otel-agents-demo")


_VERDICT_WORDS = {
    "deny": "denied",
    "escalate": "escalated",
    "require_approval": "held for approval",
}


def _verdict_per_call(records: list[Any]) -> dict[str, str | None]:
    """One verdict per tool call: a call served in the process that made it (the demo's
    MCP server) has two records with one call id; a verdict that held it back wins."""
    calls: dict[str, str | None] = {}
    for record in records:
        key = record.call_id or record.span_id
        if calls.get(key) in (None, "allow"):
            calls[key] = record.verdict
    return calls


def _print_summary(ctx: Context, run_id: str, elapsed: float, store_flag: str) -> None:
    from otel_agents.store.reader import AlertFilter, AuditFilter

    term = ctx.term
    with ctx.open_store() as store:
        summary = store.run(run_id)
        findings = store.alerts(AlertFilter(run_id=run_id, limit=None))
        records = list(store.audit_records(AuditFilter(run_id=run_id)))
    verdicts = Counter(v for v in _verdict_per_call(records).values() if v and v != "allow")
    approvers = sorted({r.approver for r in records if r.approver})
    short = run_id[:SHORT_ID]
    term.line(
        f"Done in {elapsed:.1f}s. Run {term.style(short, 'yellow')}: "
        f"{summary.llm_calls} LLM calls, {summary.tool_calls} tool calls, "
        f"{summary.handoffs} handoffs, {fmt.cost(summary.cost_usd)}"
    )
    if verdicts:
        parts = [f"{n} {_VERDICT_WORDS.get(v, v)}" for v, n in sorted(verdicts.items())]
        approved = f"; approved by {', '.join(approvers)}" if approvers else ""
        term.line(f"  policy verdicts: {', '.join(parts)}{approved}")
    kinds = sorted({f.detector for f in findings})
    if kinds:
        term.line(f"  detector findings: {term.style(', '.join(kinds), 'red')}")
    term.line()
    term.line("See what happened, and why:")
    commands = [
        (f"otel-agents{store_flag} {command}", what)
        for command, what in (
            (f"show {short}", "the decision path, as a tree"),
            (f"show {short} --full", "... without cutting long text"),
            (f"audit --run {short}", "the tool-call audit log (JSONL; --format csv)"),
            ("alerts", "detector findings across runs"),
            ("runs", "recent runs"),
        )
    ]
    width = max(len(text) for text, _ in commands) + 2
    for text, what in commands:
        term.line(f"  {term.style(text, 'cyan')}{' ' * (width - len(text))}{what}")
    term.line(term.style(f"(stored in {ctx.store_path})", "dim"))


def _print_backend_hints(ctx: Context, otlp: str, trace_id: str) -> None:
    """Say what reached the OTLP endpoint; point at Jaeger and Grafana only if spans did."""
    jaeger = os.environ.get(JAEGER_URL_ENV, "http://localhost:16686").rstrip("/")
    grafana = os.environ.get(GRAFANA_URL_ENV, "http://localhost:3000").rstrip("/")
    term = ctx.term
    exported, lost, pending = _remote_counts()
    total = exported + lost + pending
    term.line()
    if exported == 0:
        why = []
        if lost:
            why.append(f"{_spans(lost)} failed to export")
        if pending:
            why.append(f"{_spans(pending)} not sent within the flush timeout")
        term.line(
            term.style(f"Nothing reached the OTLP endpoint {otlp}", "red")
            + (f": {', '.join(why)}." if why else ".")
        )
        term.line(
            "  Is the collector running (docker compose up)? The run is in the local store:"
            " the commands above show it."
        )
        return
    if exported == total:
        term.line(f"Also sent over OTLP to {otlp} ({_spans(exported)}):")
    else:
        term.line(
            term.style(f"Only {exported} of {_spans(total)} reached {otlp}", "yellow")
            + f" ({lost} failed, {pending} not sent in time); the trace there is incomplete:"
        )
    term.line(f"  Jaeger   {jaeger}/trace/{trace_id}")
    service = os.environ.get("OTEL_SERVICE_NAME", "otel-agents-demo")
    # The provisioned "Agent operations" dashboard (dashboards/), filtered to this service.
    dashboard = f"{grafana}/d/otel-agents-operations/agent-operations?var-service_name={service}"
    term.line(f"  Grafana  {dashboard}")


def _spans(count: int) -> str:
    return f"{count} span" if count == 1 else f"{count} spans"
