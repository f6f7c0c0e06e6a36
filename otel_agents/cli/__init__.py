"""`otel-agents`: runs, decision paths, the tool-call audit log and alerts from the local store.

Each command lives in its own module with a `register(commands, common)` function that
adds its parser and sets `handler`; `main()` parses, opens nothing itself, and turns the
errors a user can act on into one clear line on stderr and a non-zero exit code:
0 success, 1 an error (no store, unknown run, a broken audit chain), 2 a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from otel_agents.cli.output import Terminal
from otel_agents.version import __version__

if TYPE_CHECKING:  # the store loads when a command needs it
    from otel_agents.store.reader import Store

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

# One module per command, in `otel-agents --help` order; each has `register(commands, common)`.
COMMANDS = ("runs", "show", "audit", "alerts", "demo", "store_info")

_DESCRIPTION = """\
See what your AI agents did, and why: recent runs, the decision path of one run, the
tool-call audit log and detector alerts, read from the local trace store that
otel_agents.instrument() writes when no OTLP endpoint is configured."""

_EXAMPLES = """\
examples:
  otel-agents demo                           try it: a multi-agent run, recorded, in seconds
  otel-agents runs                           the 20 most recent runs
  otel-agents runs --anomalies --since 1d    runs with detector findings, last 24 hours
  otel-agents show 3f2a9c1e                  one run's decision path (an id prefix is enough)
  otel-agents show 3f2a9c1e --full           ... without cutting long text
  otel-agents audit --format csv --since 7d > audit.csv
  otel-agents audit verify                   check the audit log's hash chain
  otel-agents alerts --detector retry_loop

The store: {path}
(--store PATH or OTEL_AGENTS_STORE_PATH to use another; `otel-agents store` for details)"""


@dataclass
class Context:
    """What every command gets: where the store is and where output goes."""

    store_path: Path
    term: Terminal
    err: TextIO

    def open_store(self) -> Store:
        from otel_agents.store.reader import Store

        return Store.open(self.store_path)


Handler = Callable[[argparse.Namespace, Context], int]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def build_parser() -> argparse.ArgumentParser:
    from otel_agents.store.settings import default_store_path

    parser = argparse.ArgumentParser(
        prog="otel-agents",
        description=_DESCRIPTION,
        epilog=_EXAMPLES.format(path=default_store_path()),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"otel-agents {__version__}")
    _add_global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _add_global_options(common, suppress=True)  # also accepted after the command
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for name in COMMANDS:
        importlib.import_module(f"otel_agents.cli.{name}").register(commands, common)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--store",
        metavar="PATH",
        type=Path,
        default=default,
        help="the trace store file (default: $OTEL_AGENTS_STORE_PATH, else the standard place)",
    )
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default=argparse.SUPPRESS if suppress else "auto",
        help="colour output: auto (on a terminal, unless NO_COLOR is set), always, never",
    )
    parser.add_argument(
        "-w",
        "--wide",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="never cut or drop table columns to fit the width (terminal, COLUMNS, else 100)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_OK
    from otel_agents.store.reader import StoreError, StoreNotFound
    from otel_agents.store.settings import default_store_path

    context = Context(
        store_path=(args.store or default_store_path()).expanduser(),
        term=Terminal(sys.stdout, args.color, wide=args.wide),
        err=sys.stderr,
    )
    try:
        return handler(args, context)
    except StoreNotFound as exc:
        _error(f"{exc}.\n{_NO_STORE_HINT}")
    except StoreError as exc:
        _error(str(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `otel-agents audit | head`: the reader went away; fine
        _silence_stdout()
        return EXIT_OK
    return EXIT_ERROR


_NO_STORE_HINT = (
    "Run a program that calls otel_agents.instrument() (without OTEL_EXPORTER_OTLP_ENDPOINT) to"
    " record runs there, or point --store / OTEL_AGENTS_STORE_PATH at an existing store."
)


def _error(message: str) -> None:
    sys.stderr.write(f"otel-agents: error: {message}\n")


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def usage_error(message: str) -> int:
    """For a bad filter value found after parsing: same shape and exit code as argparse."""
    _error(message)
    return EXIT_USAGE
