"""`otel-agents store`: where the trace store is, what it holds and how long it keeps it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from otel_agents.cli import EXIT_OK, Context, HelpFormatter
from otel_agents.cli import output as fmt
from otel_agents.store.reader import Store, StoreNotFound
from otel_agents.store.settings import (
    MAX_AGE_DAYS_ENV,
    MAX_MB_ENV,
    STORE_ENV,
    STORE_PATH_ENV,
    StoreSettings,
)

_DESCRIPTION = f"""\
Where the local trace store is and what it holds.

Programs that call otel_agents.instrument() write there when no OTLP endpoint is set.
Settings: {STORE_PATH_ENV} (the file), {STORE_ENV} (auto, always: also next to OTLP, off),
{MAX_AGE_DAYS_ENV} and {MAX_MB_ENV} (retention; 0: no limit)."""


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "store",
        parents=[common],
        help="where the trace store is and what it holds",
        description=_DESCRIPTION,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="JSON output")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    settings = StoreSettings.from_env()
    retention = {"max_age_days": settings.max_age_days, "max_mb": settings.max_mb}
    try:
        with Store.open(ctx.store_path) as store:
            info = store.info()
    except StoreNotFound as exc:
        if args.json:
            ctx.term.line(json.dumps({"path": str(ctx.store_path), "exists": False, **retention}))
        else:
            ctx.term.line(f"{exc}.")
        return EXIT_OK
    term = ctx.term
    if args.json:
        data = {**info.__dict__, "exists": True, **retention}
        data.pop("extra", None)
        term.line(json.dumps(data, indent=2))
        return EXIT_OK
    age = f"{settings.max_age_days:g} days" if settings.max_age_days else "no age limit"
    size = f"{settings.max_mb:g} MB" if settings.max_mb else "no size limit"
    rows = [
        ("store", info.path),
        ("size", fmt.size(info.size_bytes)),
        (
            "holds",
            f"{fmt.plural(info.runs, 'run')}, {fmt.plural(info.spans, 'span')},"
            f" {fmt.plural(info.audit_records, 'audit record')},"
            f" {fmt.plural(info.anomalies, 'detector finding')}",
        ),
        ("from", f"{fmt.local_time(info.oldest_ns)} to {fmt.local_time(info.newest_ns)}"),
        ("keeps", f"{age}, {size} ({MAX_AGE_DAYS_ENV}, {MAX_MB_ENV})"),
    ]
    for label, value in rows:
        term.line(f"{term.style(f'{label:<6}', 'bold')} {value}")
    return EXIT_OK
