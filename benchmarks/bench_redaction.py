"""Masking cost per value: typical tool arguments, 10 kB and 1 MB strings, hostile inputs,
and the time `Redactor()` (built by every `instrument()`) spends compiling patterns.

    python benchmarks/bench_redaction.py

Uses the secret corpus of the tests (tests/redaction/corpus.py) for realistic content.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "redaction"))

from corpus import NEAR_MISSES, SHAPES

from otel_agents.capture import Capturer, Redactor

HOSTILE = {
    "'key=' repeated": "key=" * 2500,
    "'api_key: x' repeated": "api_key: x " * 900,
    "'://' repeated": "://" * 3300,
    "private key blocks without END": ("-----BEGIN RSA PRIVATE KEY-----\n" + "A" * 64 + "\n") * 100,
    "digit groups": "1234 " * 2000,
    "'+1 ' repeated": "+1 " * 3300,
    "'a@' repeated": "a@" * 5000,
    "'mysql ' repeated": "mysql " * 1600,
    "'password: \"' repeated": 'password: "' * 900,
}


def per_call_us(function: Callable[[str], str], value: str, calls: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            function(value)
        best = min(best, (time.perf_counter() - started) / calls)
    return best * 1e6


def main() -> None:
    typical = json.dumps({"query": "list open invoices for vendor V-1042", "limit": 10})
    prose = " ".join(NEAR_MISSES)
    ten_kb = (prose * (10_000 // len(prose) + 1))[:10_000]
    secrets_10kb = "\n".join(shape.text for shape in SHAPES)[:10_000]
    one_mb = (ten_kb * 100)[:1_000_000]
    for pii in (False, True):
        redactor = Redactor(pii=pii)
        for shape in SHAPES:  # compile what the corpus needs, outside the timings
            redactor.scrub(shape.text)
        capturer = Capturer(8192, redactor)
        print(f"-- {'secrets + PII' if pii else 'secrets'} (µs per value)")
        rows = [
            ("typical tool arguments (~70 B JSON)", redactor.scrub, typical, 5000),
            ("10 kB of technical prose (near misses)", redactor.scrub, ten_kb, 50),
            ("10 kB dense with secrets", redactor.scrub, secrets_10kb, 20),
            ("1 MB string, whole", redactor.scrub, one_mb, 1),
            ("1 MB string through Capturer (cut at 8192)", capturer.text, one_mb, 20),
        ]
        rows += [(f"hostile: {name}", redactor.scrub, text, 5) for name, text in HOSTILE.items()]
        for name, function, value, calls in rows:
            print(f"  {name:45s} {per_call_us(function, value, calls):10.1f}")
    re.purge()
    started = time.perf_counter()
    Redactor()
    print(f"-- Redactor() build (compiles nothing): {(time.perf_counter() - started) * 1e3:.3f} ms")
    re.purge()
    started = time.perf_counter()
    Redactor(pii=True).scrub("\n".join(shape.text for shape in SHAPES))
    print(f"-- compiling every rule on first use: {(time.perf_counter() - started) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
