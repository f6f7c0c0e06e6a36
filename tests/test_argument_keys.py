"""Argument keys (fingerprints, decision matching): bounded work on any value, no user code.

The bounds are asserted structurally (values visited, characters read, depth reached),
never by the clock; `benchmarks/bench_hostile_args.py` measures the time.
"""

from __future__ import annotations

import array
import dataclasses
import enum
from typing import Any

import pytest
from agents_testing import Hostile, Telemetry

import otel_agents
from otel_agents import semconv as sc
from otel_agents.core.arguments import (
    MAX_KEY_CHARS,
    MAX_KEY_DEPTH,
    MAX_KEY_NODES,
    ArgumentDigest,
    _sample_ranges,
    canonical_arguments,
)


def deep_dict(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"next": value}
    return value


class HostileDict(dict[str, Any]):
    def items(self) -> Any:
        raise RuntimeError("items")

    def __iter__(self) -> Any:
        raise RuntimeError("iter")


class HostileStr(str):
    def __len__(self) -> int:
        raise RuntimeError("len")

    def __getitem__(self, index: Any) -> str:
        raise RuntimeError("getitem")


HOSTILE_INPUTS: dict[str, Any] = {
    "10 MB bytes": b"\x00" * 10_000_000,
    "10 MB str": "x" * 10_000_000,
    "1M-item list": list(range(1_000_000)),
    "10k-deep dict": deep_dict(10_000),
    "100k-key dict": {f"k{i}": i for i in range(100_000)},
    "huge int": 7**100_000,
    "many long strings": ["y" * 100_000 for _ in range(200)],
}


@pytest.mark.parametrize("label", HOSTILE_INPUTS)
def test_hostile_values_are_read_within_the_bounds(label: str) -> None:
    digest = ArgumentDigest.of({"payload": HOSTILE_INPUTS[label]})
    assert digest.key is not None
    assert not digest.complete
    assert digest.nodes <= MAX_KEY_NODES + 1
    assert digest.depth <= MAX_KEY_DEPTH
    assert digest.chars <= MAX_KEY_CHARS


def test_identical_hostile_values_match_and_different_ones_differ() -> None:
    for label, value in HOSTILE_INPUTS.items():
        assert canonical_arguments({"p": value}) == canonical_arguments({"p": value}), label
    size = 10_000_000
    middle_window = sorted(_sample_ranges(size))[len(_sample_ranges(size)) // 2]
    for changed in (0, size - 1, middle_window[0]):  # head, tail, a window in the middle
        big = bytearray(size)
        before = canonical_arguments({"p": bytes(big)})
        big[changed] = 1
        assert canonical_arguments({"p": bytes(big)}) != before, changed
    assert canonical_arguments({"p": "x" * 10_000_000}) != canonical_arguments(
        {"p": "x" * 10_000_001}
    )
    assert canonical_arguments({"p": list(range(1_000_000))}) != canonical_arguments(
        {"p": list(range(1_000_001))}
    )
    assert canonical_arguments(deep_dict(10_000)) != canonical_arguments(deep_dict(10))


def test_common_arguments_match_across_forms_and_differ_by_value() -> None:
    assert canonical_arguments('{"b": 1, "a": "x"}') == canonical_arguments({"a": "x", "b": 1})
    assert canonical_arguments(b'{"a": [1, 2]}') == canonical_arguments({"a": (1, 2)})
    nested = {"vendor": {"id": "V-1", "tags": ["a", "b"]}, "n": 2.5}
    assert canonical_arguments(dict(reversed(list(nested.items())))) == canonical_arguments(nested)
    distinct = [
        {"a": 1},
        {"a": 2},
        {"a": "1"},
        {"a": 1.0},
        {"a": True},
        {"a": None},
        {"a": [1]},
        {"b": 1},
        {"a": {"b": 1}},
        {"a": {1, 2}},
        {"a": b"1"},
        "a",
    ]
    keys = {canonical_arguments(value) for value in distinct}
    assert len(keys) == len(distinct)
    assert canonical_arguments(None) is None


def test_no_method_of_the_values_own_type_runs(caplog: pytest.LogCaptureFixture) -> None:
    for value in (
        Hostile("a"),
        {"x": Hostile("a")},
        [Hostile("a")],
        HostileDict(a=1),
        {"x": HostileStr("text")},
        {"x": {Hostile.__name__: 1}, "y": (Hostile("b"),)},
        {"view": memoryview(array.array("i", [1, 2, 3, 4]))[::2]},  # cannot be flattened
    ):
        digest = ArgumentDigest.of(value)
        assert digest.key is not None
    assert not [r for r in caplog.records if "internal error" in r.getMessage()]
    # Objects count by type and state: equal state matches, different state differs.
    assert canonical_arguments({"x": Hostile("a")}) == canonical_arguments({"x": Hostile("a")})
    assert canonical_arguments({"x": Hostile("a")}) != canonical_arguments({"x": Hostile("b")})


def test_dataclasses_and_enums_key_by_their_state() -> None:
    @dataclasses.dataclass
    class Vendor:
        id: str
        plan: str

    class Plan(enum.Enum):
        BASIC = 1
        PRO = 2

    assert canonical_arguments({"v": Vendor("1", "a")}) == canonical_arguments(
        {"v": Vendor("1", "a")}
    )
    assert canonical_arguments({"v": Vendor("1", "a")}) != canonical_arguments(
        {"v": Vendor("1", "b")}
    )
    assert canonical_arguments({"p": Plan.BASIC}) != canonical_arguments({"p": Plan.PRO})


def test_hostile_arguments_are_fingerprinted_and_retries_still_counted(
    telemetry: Telemetry,
) -> None:
    @otel_agents.tool
    def upload(blob: Any) -> int:
        return 1

    payload = b"\x00" * 10_000_000
    with otel_agents.agent("uploader"):
        upload(payload)
        upload(payload)
        upload(Hostile("x"))
    spans = [s for s in telemetry.spans() if s.name == "execute_tool upload"]
    attempts = [dict(s.attributes or {})[sc.TOOL_CALL_ATTEMPT] for s in spans]
    assert attempts == [1, 2, 1]
