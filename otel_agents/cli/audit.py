"""`otel-agents audit`: export the tool-call audit log, or verify its hash chain."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from otel_agents.cli import EXIT_ERROR, EXIT_OK, Context, HelpFormatter, usage_error
from otel_agents.cli import output as fmt
from otel_agents.cli.args import TIME_HELP, point_in_time
from otel_agents.store.audit import AUDIT_FIELDS, AuditRecord, Verification
from otel_agents.store.reader import AuditFilter, Store

EXPORT_FIELDS = ("seq", "time", *[f for f in AUDIT_FIELDS if f != "seq"])

_EXAMPLES = """\
examples:
  otel-agents audit                                  every record, as JSON lines
  otel-agents audit --format csv -o audit.csv        as CSV, into a file
  otel-agents audit --tool create_account --since 7d
  otel-agents audit --verdict deny --run 3f2a9c1e
  otel-agents audit verify                           check the hash chain
  otel-agents audit verify --run latest              ... and whether one run is intact

One record per tool call: time, run, agent, tool, input, output, reasoning, policy verdict,
approver, contract check, and the record's place in the hash chain (prev_hash, hash =
SHA-256 of prev_hash, a newline and the record's other fields as sorted compact JSON).
Input, output and reasoning are present only when content capture was on."""

_VERIFY_HELP = """\
Walk the chain from its first record to its head and report the first record that was
altered or is missing (exit code 1). The head printed at the end (sequence number and
hash) pins the whole log: keep a copy elsewhere to also detect a log rewritten from
scratch."""


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "audit",
        parents=[common],
        help="export the tool-call audit log (JSONL or CSV), or verify it",
        description="The tamper-evident tool-call audit log. `export` (the default) writes"
        " records, oldest first; `verify` checks the hash chain.",
        epilog=_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    _add_export_options(parser, suppress=False)
    parser.set_defaults(handler=export)
    actions = parser.add_subparsers(title="actions", metavar="ACTION", dest="action")
    export_parser = actions.add_parser(
        "export",
        parents=[common],
        help="write records as JSON lines or CSV (the default action)",
        formatter_class=HelpFormatter,
    )
    _add_export_options(export_parser, suppress=True)
    export_parser.set_defaults(handler=export)
    verify_parser = actions.add_parser(
        "verify",
        parents=[common],
        help="check the hash chain; report the first altered or missing record",
        description=_VERIFY_HELP,
        formatter_class=HelpFormatter,
    )
    verify_parser.add_argument(
        "--run",
        metavar="RUN",
        default=argparse.SUPPRESS,  # `audit --run X verify` works too
        help="also say whether this run's records (id prefix, trace id or `latest`) are intact",
    )
    verify_parser.add_argument("--json", action="store_true", help="the result as JSON")
    verify_parser.set_defaults(handler=verify)


def _add_export_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--format", choices=("jsonl", "csv"), default=default("jsonl"), help="default: jsonl"
    )
    parser.add_argument(
        "-o", "--output", type=Path, metavar="FILE", default=default(None), help="default: stdout"
    )
    parser.add_argument("--run", metavar="RUN", default=default(None), help="one run (id prefix)")
    parser.add_argument("--agent", metavar="NAME", default=default(None), help="one agent")
    parser.add_argument("--tool", metavar="NAME", default=default(None), help="one tool")
    parser.add_argument(
        "--verdict",
        choices=("allow", "deny", "require_approval", "escalate"),
        default=default(None),
        help="one policy verdict",
    )
    parser.add_argument(
        "--status",
        choices=("ok", "error"),
        default=default(None),
        help="calls that succeeded (ok) or raised (error)",
    )
    parser.add_argument(
        "--since", type=point_in_time, metavar="TIME", default=default(None), help=TIME_HELP
    )
    parser.add_argument(
        "--until", type=point_in_time, metavar="TIME", default=default(None), help="before TIME"
    )


# -- export ------------------------------------------------------------------------------------


def export(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.open_store() as store:
        filters = AuditFilter(
            run_id=store.resolve_run(args.run) if args.run else None,
            agent=args.agent,
            tool=args.tool,
            verdict=args.verdict,
            status=args.status,
            since_ns=args.since,
            until_ns=args.until,
        )
        progress = fmt.Progress("exporting audit records")
        if progress.enabled:
            progress.total = store.count_audit(filters)
        with _destination(args.output) as out:
            written = _write(store.audit_records(filters), args.format, out, progress)
        progress.done()
    if args.output is not None:
        ctx.err.write(f"wrote {fmt.plural(written, 'audit record')} to {args.output}\n")
    return EXIT_OK


@contextlib.contextmanager
def _destination(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with path.open("w", encoding="utf-8", newline="") as handle:
        yield handle


def _write(records: Iterator[AuditRecord], form: str, out: TextIO, progress: fmt.Progress) -> int:
    writer = csv.DictWriter(out, EXPORT_FIELDS, lineterminator="\n") if form == "csv" else None
    if writer is not None:
        writer.writeheader()
    written = 0
    for record in records:
        row = record_json(record)
        if writer is not None:
            writer.writerow(row)
        else:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        written += 1
        progress.update(written)
    return written


def record_json(record: AuditRecord) -> dict[str, Any]:
    data: dict[str, Any] = {"seq": record.seq, "time": fmt.iso_utc(record.time_ns)}
    data.update((name, getattr(record, name)) for name in AUDIT_FIELDS if name != "seq")
    return data


# -- verify -------------------------------------------------------------------------------------


# Export filters that `verify` cannot honour: the chain is checked whole.
_NOT_FOR_VERIFY = ("agent", "tool", "verdict", "status", "since", "until", "output")


def verify(args: argparse.Namespace, ctx: Context) -> int:
    ignored = [name for name in _NOT_FOR_VERIFY if getattr(args, name, None) is not None]
    if getattr(args, "format", "jsonl") != "jsonl":
        ignored.append("format")
    if ignored:
        flags = ", ".join(f"--{name}" for name in ignored)
        return usage_error(
            f"audit verify checks the whole chain: {flags} cannot apply (only --run and --json)"
        )
    run_ref = getattr(args, "run", None)
    with ctx.open_store() as store:
        run_id = store.resolve_run(run_ref) if run_ref else None
        progress = fmt.Progress("verifying audit records")
        result = store.verify_audit(progress.update)
        progress.done()
        bad = store.audit_record(result.bad_seq) if result.bad_seq is not None else None
        run_part = _run_part(store, run_id, result) if run_id else None
    if args.json:
        data = dict(result.__dict__)
        data["bad_record"] = record_json(bad) if bad is not None else None
        if run_part is not None:
            data["run"] = run_part
        ctx.term.line(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        _report(ctx, result, bad)
        if run_part is not None:
            _report_run(ctx, run_part)
    ok = result.ok if run_part is None else run_part["intact"]
    return EXIT_OK if ok else EXIT_ERROR


def _run_part(store: Store, run_id: str, result: Verification) -> dict[str, Any]:
    """Whether one run's records are intact: each record's hash covers every record before
    it, so they are when the chain verifies at least up to the run's last record."""
    seqs = [record.seq for record in store.audit_records(AuditFilter(run_id=run_id))]
    last = max(seqs) if seqs else None
    # A run without tool calls has nothing of its own to alter: the chain's result stands.
    intact = result.ok if last is None else result.bad_seq is None or result.bad_seq > last
    return {"run_id": run_id, "records": len(seqs), "last_seq": last, "intact": intact}


def _report_run(ctx: Context, part: dict[str, Any]) -> None:
    term, g = ctx.term, ctx.term.glyphs
    short = part["run_id"][:8]
    if not part["records"]:
        term.line(f"{term.style(g.warn, 'yellow')} run {short} has no audit records")
    elif part["intact"]:
        term.line(
            f"{term.style(g.ok, 'green')} run {short}: {fmt.plural(part['records'], 'record')}"
            f" intact (the chain verifies through record {part['last_seq']})"
        )
    else:
        term.line(
            term.style(f"{g.bad} run {short}: its records are not proven intact", "red", "bold")
            + f" (the chain breaks before its last record, {part['last_seq']})"
        )


def _report(ctx: Context, result: Verification, bad: AuditRecord | None) -> None:
    term, g = ctx.term, ctx.term.glyphs
    if result.ok:
        if not result.records:
            term.line(f"{term.style(g.ok, 'green')} the audit log is empty")
            return
        span = f"records {result.first_seq}-{result.head_seq}"
        term.line(
            f"{term.style(g.ok, 'green')} audit log intact:"
            f" {fmt.plural(result.records, 'record')} ({span}), every hash chains"
        )
        term.line(term.style(f"  head {result.head_seq}:{result.head_hash}", "dim"))
        keep = "  (keep this head elsewhere to detect a log rewritten from scratch)"
        term.line(term.style(keep, "dim"))
        return
    term.line(
        term.style(f"{g.bad} audit log broken at record {result.bad_seq}", "red", "bold")
        + f": {result.detail}"
    )
    if bad is not None:
        where = f"run {bad.run_id[:8] if bad.run_id else '-'}, agent {bad.agent or '-'}"
        term.line(f"  record {bad.seq}: {fmt.local_time(bad.time_ns)}, {where}, tool {bad.tool}")
    term.line(f"  {fmt.plural(result.records, 'record')} before it verified")
