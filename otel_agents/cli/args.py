"""Argument types shared by the commands: times, counts and names, with clear errors."""

from __future__ import annotations

import argparse
import re
import time
from datetime import datetime, timedelta

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d|day|days|w|wk|weeks?)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}

TIME_HELP = "a time: 30m, 2h, 7d, 1w ago; today, yesterday; or 2026-11-01[T14:30[:00]][Z|+01:00]"


_MAX_NS = 2**63 - 1  # SQLite integers are 64-bit: the year 2262


def point_in_time(text: str, now: float | None = None) -> int:
    """A time given on the command line, in nanoseconds since the epoch (see `_parse`)."""
    return min(max(_parse(text, now), 0), _MAX_NS)


def _parse(text: str, now: float | None) -> int:
    """`30m`, `2h`, `7d`, `1w` mean that long ago; `today` and `yesterday` mean midnight
    (local time); dates and ISO times without a zone are local time.
    """
    raw = text.strip().lower()
    now = time.time() if now is None else now
    match = _RELATIVE.match(raw)
    if match:
        unit = match.group(2)[0]
        return int((now - float(match.group(1)) * _UNIT_SECONDS[unit]) * 1e9)
    if raw in ("today", "yesterday"):
        midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
        if raw == "yesterday":
            midnight -= timedelta(days=1)
        return int(midnight.timestamp() * 1e9)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {TIME_HELP}") from None
    return int(moment.timestamp() * 1e9)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value
