"""Terminal output: colour only where it helps, widths that fit, and readable numbers.

Colour follows the usual rules: on when stdout is a terminal, off when `NO_COLOR` is set
(any value) or `TERM=dumb`; `--color always|never` overrides. The width is the terminal's
(or `COLUMNS`; 100 when the output is not a terminal); `--wide` lifts it. Times are local
and say their zone.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TextIO

_CODES = {
    "bold": "1",
    "dim": "2",
    "italic": "3",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
}


@dataclass(frozen=True)
class Glyphs:
    branch: str
    last: str
    pipe: str
    space: str
    arrow: str
    ok: str
    bad: str
    warn: str
    ellipsis: str
    total: str


UNICODE = Glyphs("├─ ", "└─ ", "│  ", "   ", "→", "✓", "✗", "!", "…", "Σ")
ASCII = Glyphs("|- ", "`- ", "|  ", "   ", "->", "ok", "x", "!", "...", "sum")


class Terminal:
    """Where output goes and how it may look."""

    def __init__(
        self, out: TextIO, color: str = "auto", width: int | None = None, wide: bool = False
    ) -> None:
        self.out = out
        self.color = _use_color(out, color)
        self.width = UNLIMITED if wide else (width or _width(out))
        encoding = (getattr(out, "encoding", None) or "").lower().replace("-", "")
        self.glyphs = UNICODE if encoding in ("utf8", "utf16", "utf32") else ASCII

    def style(self, text: str, *styles: str | None) -> str:
        names = [s for s in styles if s]
        if not self.color or not names or not text:
            return text
        codes = ";".join(_CODES[s] for s in names)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def fit(self, text: str, width: int) -> tuple[str, bool]:
        """Cut `text` (one line) to `width` characters; True when something was cut."""
        flat = " ".join(text.split())
        if len(flat) <= width:
            return flat, False
        mark = self.glyphs.ellipsis
        return flat[: max(width - len(mark), 0)] + mark, True


UNLIMITED = 1_000_000  # --wide: nothing is cut or dropped to fit


def _use_color(out: TextIO, choice: str) -> bool:
    if choice == "always":
        return True
    if choice == "never" or "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


def _width(out: TextIO) -> int:
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return max(int(columns), 40)
    if out is sys.stdout:
        return max(shutil.get_terminal_size((100, 24)).columns, 40)
    return 100


# -- tables ---------------------------------------------------------------------------------


@dataclass
class Column:
    header: str
    align: str = "<"  # < or >
    flexible: bool = False  # may be cut to fit
    min_width: int = 4
    drop_order: int = 0  # 0: always shown; higher numbers are dropped first when too wide
    style: str | Callable[[str], str | None] | None = None  # a style, or one per cell text


def render_table(term: Terminal, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
    """Columns sized to their content; flexible ones shrink and optional ones go when the
    terminal is too narrow."""
    shown = list(range(len(columns)))
    widths = [max([len(columns[i].header), *(len(r[i]) for r in rows)]) for i in shown]
    gap = 2

    def total() -> int:
        return sum(widths[i] for i in shown) + gap * (len(shown) - 1)

    while total() > term.width:  # shrink the widest flexible column, a character at a time
        flexible = [i for i in shown if columns[i].flexible and widths[i] > columns[i].min_width]
        if not flexible:
            break
        widest = max(flexible, key=lambda i: widths[i])
        widths[widest] -= 1
    droppable = sorted((c.drop_order, i) for i, c in enumerate(columns) if c.drop_order)
    while total() > term.width and droppable:
        shown.remove(droppable.pop()[1])
    term.line(_row(term, columns, shown, widths, [c.header for c in columns], header=True))
    for row in rows:
        term.line(_row(term, columns, shown, widths, row))


def _row(
    term: Terminal,
    columns: Sequence[Column],
    shown: list[int],
    widths: list[int],
    cells: Sequence[str],
    header: bool = False,
) -> str:
    parts = []
    for i in shown:
        text, _ = term.fit(cells[i], widths[i])
        padded = f"{text:{columns[i].align}{widths[i]}}"
        style = "bold" if header else columns[i].style
        if callable(style):
            style = style(cells[i])
        parts.append(term.style(padded, style) if style else padded)
    return "  ".join(parts).rstrip()


# -- numbers and times ---------------------------------------------------------------------


def local_time(ns: int | None) -> str:
    """`2026-12-04 16:25:05 CET`: local time, with its zone."""
    if not ns:
        return "-"
    moment = datetime.fromtimestamp(ns / 1e9).astimezone()
    return f"{moment:%Y-%m-%d %H:%M:%S} {_zone(moment)}"


def time_header(name: str = "TIME", now: float | None = None) -> str:
    """A table's time column header with the zone its (short) times are in: `TIME(UTC)`
    (one word, so that scripts splitting the header on spaces keep working)."""
    moment = datetime.fromtimestamp(time.time() if now is None else now).astimezone()
    return f"{name}({_zone(moment)})"


def _zone(moment: datetime) -> str:
    name = moment.tzname() or ""
    if name and not name.startswith(("+", "-")):
        return name
    offset = moment.strftime("%z")  # +0100
    return f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"


def plural(number: int, word: str, words: str | None = None) -> str:
    """`1 run`, `2 runs`, `1,204 retries`."""
    return f"{number:,} {word if number == 1 else (words or word + 's')}"


def short_time(ns: int | None, now: float | None = None) -> str:
    """`11-22 14:03:05` this year, `2025-11-22 14:03` before: short, and still sortable."""
    if not ns:
        return "-"
    moment = datetime.fromtimestamp(ns / 1e9)
    this_year = datetime.fromtimestamp(time.time() if now is None else now).year
    if moment.year == this_year:
        return moment.strftime("%m-%d %H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def iso_utc(ns: int | None) -> str | None:
    if not ns:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="milliseconds")


def duration(ns: int | None) -> str:
    if ns is None:
        return "-"
    seconds = ns / 1e9
    if seconds < 0.01:
        return f"{seconds * 1000:.1f}ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def cost(usd: float | None) -> str:
    if usd is None:
        return "-"
    if usd == 0:
        return "$0"
    if usd < 0.01:
        return f"${usd:.4f}"
    return f"${usd:.2f}" if usd >= 1 else f"${usd:.3f}"


def count(value: int | None) -> str:
    return f"{value:,}" if value is not None else "-"


def size(num_bytes: int) -> str:
    value = float(num_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


# -- progress ------------------------------------------------------------------------------


class Progress:
    """A one-line counter on stderr for work that takes more than a moment (TTY only)."""

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None):
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self._last = 0.0
        self._shown = False

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.started < 0.5 or now - self._last < 0.1:
            return
        self._last = now
        of = f"/{self.total:,}" if self.total else ""
        self.stream.write(f"\r{self.label} {done:,}{of}…")
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
