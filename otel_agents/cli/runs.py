"""`otel-agents runs`: recent agent runs, newest first."""

from __future__ import annotations

import argparse
import json
from typing import Any

from otel_agents.cli import EXIT_OK, Context, HelpFormatter
from otel_agents.cli import output as fmt
from otel_agents.cli.args import TIME_HELP, point_in_time, positive_int
from otel_agents.store.reader import RUN_STATUSES, RunFilter, RunSummary

DEFAULT_LIMIT = 20
SHORT_ID = 8

_EXAMPLES = """\
examples:
  otel-agents runs                              the 20 most recent runs
  otel-agents runs --status error --since 2h    failed runs of the last two hours
  otel-agents runs --agent vendor-onboarding -n 50
  otel-agents runs --anomalies --json           runs with detector findings, as JSON

Status: ok, error, running (no root span yet; its process still runs) or incomplete
(did not finish: its process is gone, or, where that cannot be checked, the run has been
quiet for 10 minutes). `otel-agents show` draws an unfinished run with its open spans."""

STATUS_STYLE = {"ok": "green", "error": "red", "running": "cyan", "incomplete": "yellow"}


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "runs",
        parents=[common],
        help="list recent agent runs, newest first",
        description="Recent agent runs, newest first, with their totals.",
        epilog=_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--agent", metavar="NAME", help="only runs whose root agent is NAME")
    parser.add_argument("--status", choices=RUN_STATUSES, help="only runs with this status")
    parser.add_argument(
        "--anomalies", action="store_true", help="only runs where a detector found something"
    )
    parser.add_argument("--since", type=point_in_time, metavar="TIME", help=f"from {TIME_HELP}")
    parser.add_argument("--until", type=point_in_time, metavar="TIME", help="before TIME")
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument(
        "-n",
        "--limit",
        type=positive_int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"show at most N runs (default {DEFAULT_LIMIT})",
    )
    limit.add_argument("--all", action="store_true", help="show every matching run")
    parser.add_argument("--json", action="store_true", help="JSON output, one array of runs")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    filters = RunFilter(
        agent=args.agent,
        status=args.status,
        anomalies_only=args.anomalies,
        since_ns=args.since,
        until_ns=args.until,
        limit=None if args.all else args.limit,
    )
    with ctx.open_store() as store:
        runs = store.runs(filters)
    term = ctx.term
    if args.json:
        term.line(json.dumps([run_json(r) for r in runs], indent=2))
        return EXIT_OK
    if not runs:
        filtered = any((args.agent, args.status, args.anomalies, args.since, args.until))
        term.line(
            "No runs match these filters." if filtered else f"No runs yet in {ctx.store_path}."
        )
        return EXIT_OK
    print_runs(ctx, runs)
    if not args.all and len(runs) == args.limit:
        term.line(term.style(f"(the {len(runs)} newest; -n N or --all for more)", "dim"))
    return EXIT_OK


def run_json(run: RunSummary) -> dict[str, Any]:
    data = run.to_json()
    data["start"] = fmt.iso_utc(run.start_ns)
    data["end"] = fmt.iso_utc(run.end_ns)
    return data


def print_runs(ctx: Context, runs: list[RunSummary]) -> None:
    columns = [
        fmt.Column("RUN", style="yellow"),
        fmt.Column(fmt.time_header("STARTED"), drop_order=1),
        fmt.Column("AGENT", flexible=True, min_width=8),
        fmt.Column("STATUS", style=lambda s: STATUS_STYLE.get(s.strip())),
        fmt.Column("DURATION", ">", drop_order=2),
        fmt.Column("COST", ">"),
        fmt.Column("TOKENS", ">", drop_order=5),
        fmt.Column("LLM", ">", drop_order=4),
        fmt.Column("TOOLS", ">", drop_order=3),
        fmt.Column("ANOMALIES", ">", style=lambda s: "red" if s.strip() not in ("0", "") else None),
    ]
    rows = [
        [
            r.run_id[:SHORT_ID],
            fmt.short_time(r.start_ns),
            r.agent or "?",
            r.status,
            fmt.duration(r.duration_ns),
            fmt.cost(r.cost_usd),
            fmt.count(r.input_tokens + r.output_tokens),
            fmt.count(r.llm_calls),
            fmt.count(r.tool_calls),
            fmt.count(r.anomalies),
        ]
        for r in runs
    ]
    fmt.render_table(ctx.term, columns, rows)
