"""`otel-agents alerts`: detector findings across runs, newest first."""

from __future__ import annotations

import argparse
import json
from typing import Any

from otel_agents import semconv as sc
from otel_agents.cli import EXIT_OK, Context, HelpFormatter, usage_error
from otel_agents.cli import output as fmt
from otel_agents.cli.args import TIME_HELP, point_in_time, positive_int
from otel_agents.cli.runs import SHORT_ID
from otel_agents.store.reader import Alert, AlertFilter

DEFAULT_LIMIT = 50

_EXAMPLES = """\
examples:
  otel-agents alerts                          the 50 newest findings
  otel-agents alerts --detector retry_loop --since 1d
  otel-agents alerts --run 3f2a9c1e --json

Detectors: retry_loop, cost_spike, budget_exceeded, handoff_ping_pong,
silent_tool_failure, runaway_run. `otel-agents show RUN` puts each finding in context."""


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "alerts",
        parents=[common],
        help="list detector findings across runs",
        description="What the anomaly detectors found, newest first.",
        epilog=_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--run", metavar="RUN", help="one run (id prefix)")
    parser.add_argument("--detector", metavar="NAME", help="one detector, e.g. retry_loop")
    parser.add_argument("--agent", metavar="NAME", help="runs whose root agent is NAME")
    parser.add_argument("--since", type=point_in_time, metavar="TIME", help=f"from {TIME_HELP}")
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument(
        "-n",
        "--limit",
        type=positive_int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"show at most N findings (default {DEFAULT_LIMIT})",
    )
    limit.add_argument("--all", action="store_true", help="show every matching finding")
    parser.add_argument("--json", action="store_true", help="JSON output")
    parser.set_defaults(handler=run)


def detector_names() -> list[str]:
    values = vars(sc.DetectorNameValues)
    return [v for k, v in values.items() if k.isupper() and isinstance(v, str)]


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args.detector is not None and args.detector not in detector_names():
        return usage_error(
            f"argument --detector: {args.detector!r} is not a detector;"
            f" choose from {', '.join(detector_names())}"
        )
    with ctx.open_store() as store:
        filters = AlertFilter(
            run_id=store.resolve_run(args.run) if args.run else None,
            detector=args.detector,
            agent=args.agent,
            since_ns=args.since,
            limit=None if args.all else args.limit,
        )
        alerts = store.alerts(filters)
    term = ctx.term
    if args.json:
        term.line(json.dumps([_json(a) for a in alerts], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not alerts:
        term.line("No detector findings match." if _filtered(args) else "No detector findings.")
        return EXIT_OK
    columns = [
        fmt.Column(fmt.time_header(), drop_order=2),
        fmt.Column("RUN", style="yellow"),
        fmt.Column("AGENT", flexible=True, min_width=6, drop_order=1),
        fmt.Column("DETECTOR", style="red"),
        fmt.Column("WHERE", flexible=True, min_width=10, drop_order=3),
        fmt.Column("FINDING", flexible=True, min_width=40),
    ]
    rows = [
        [
            fmt.short_time(a.time_ns),
            (a.run_id or "-")[:SHORT_ID],
            a.agent or "-",
            a.detector,
            a.span_name.removeprefix("execute_tool "),
            _finding(a),
        ]
        for a in alerts
    ]
    fmt.render_table(term, columns, rows)
    if not args.all and len(alerts) == args.limit:
        term.line(term.style(f"(the {len(alerts)} newest; -n N or --all for more)", "dim"))
    return EXIT_OK


def _filtered(args: argparse.Namespace) -> bool:
    return any((args.run, args.detector, args.agent, args.since))


def _finding(alert: Alert) -> str:
    text = alert.message or ""
    if alert.observed is not None and alert.threshold is not None:
        text += f" (observed {alert.observed:g}, threshold {alert.threshold:g})"
    return text.strip() or "-"


def _json(alert: Alert) -> dict[str, Any]:
    data = alert.to_json()
    data["time"] = fmt.iso_utc(alert.time_ns)
    return data
