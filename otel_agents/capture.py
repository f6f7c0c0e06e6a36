"""Turning arbitrary Python values into span-safe text: serialize, scrub secrets, truncate.

Tool arguments and results can be anything: objects that are not JSON, cyclic structures,
bytes, ten-megabyte strings. `Capturer.text()` never raises and does bounded work: it walks
the value once with a character budget, replaces what JSON cannot hold with a short
description, masks secrets by key (`api_key`, `Authorization`, ...) and by value (see
`otel_agents.redaction`), and cuts the result to
`max_length` with a marker that records the original size.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import PurePath
from typing import Any

from otel_agents.redaction import REDACTED, Redactor

__all__ = ["REDACTED", "Capturer", "Redactor", "summarize"]

_MAX_DEPTH = 24
_MAX_NODES = 5_000
_REDACTION_SLACK = 256  # scrub a little past the cut so a secret on the boundary is caught


class Capturer:
    """Serializes captured content: safe, scrubbed and bounded. Thread-safe and reusable."""

    def __init__(self, max_length: int, redactor: Redactor) -> None:
        self.max_length = max_length
        self.redactor = redactor

    def text(self, value: Any) -> str:
        """`value` as scrubbed text of at most `max_length` characters (plus a marker)."""
        try:
            return self._text(value)
        except Exception as exc:  # a value so strange that even the safe walk failed
            from otel_agents.runtime import report_internal_error

            report_internal_error("capture", exc)
            return f"<unserializable {type(value).__name__}>"

    def structured(self, value: Any) -> Any:
        """`value` made safe as `text` does, but kept structured (lists and mappings) where
        the bounded, scrubbed text is still whole JSON; cut content stays text. For
        log-based events, where the conventions want content in structured form."""
        text = self.text(value)
        if isinstance(value, str):
            return text
        try:
            return json.loads(text)
        except ValueError:
            return text

    def scrub(self, text: str) -> str:
        """Scrub and bound a string that is not content (an exception message, say)."""
        return self._bound(text, exact_size=len(text), complete=True)

    def _text(self, value: Any) -> str:
        if isinstance(value, str):
            return self._bound(value, exact_size=len(value), complete=True)
        walk = _Walk(self.max_length, self.redactor)
        converted = walk.convert(value, 0)
        if isinstance(converted, str) and not isinstance(value, (Mapping, list, tuple)):
            text = converted  # a plain object's description: no JSON quotes
        else:
            text = json.dumps(converted, ensure_ascii=False, separators=(",", ":"))
        size = max(walk.size, len(text))
        return self._bound(text, exact_size=size, complete=not walk.gave_up)

    def _bound(self, text: str, *, exact_size: int, complete: bool) -> str:
        limit = self.max_length
        head = text[: limit + _REDACTION_SLACK]
        scrubbed = self.redactor.scrub(head)
        if len(text) <= limit and exact_size <= limit and complete:
            return scrubbed
        if len(scrubbed) > limit:
            scrubbed = scrubbed[:limit]
        qualifier = "" if complete else "more than "
        return f"{scrubbed}…[truncated from {qualifier}{exact_size} chars]"


class _Walk:
    """One bounded pass that turns a value into JSON-compatible data.

    Captured messages and tool schemas are mostly dicts, lists and strings: their exact
    types are tested first, the abstract ones (a `Mapping` check runs Python code in `abc`)
    only for the rest."""

    def __init__(self, budget: int, redactor: Redactor) -> None:
        self.budget = budget
        self.limit = budget + _REDACTION_SLACK  # past this size, the walk stops
        self.redactor = redactor
        self.size = 0  # estimated characters of the full (uncut) JSON text
        self.nodes = 0
        self.gave_up = False
        self._ancestors: set[int] = set()

    def convert(self, value: Any, depth: int) -> Any:
        self.nodes += 1
        cls = type(value)
        if cls is str:
            self.size += len(value) + 2
            return value[: self.limit]
        if cls is dict:
            return self._nested(value, depth, self._convert_mapping)
        if cls is list:
            return self._nested(value, depth, self._convert_list)
        return self._convert_other(value, depth)

    def _nested(self, value: Any, depth: int, convert: Callable[[Any, int], Any]) -> Any:
        """`convert(value, depth)` for a container, unless too deep or inside itself."""
        if depth >= _MAX_DEPTH:
            self.gave_up = True
            return "<too deep>"
        if id(value) in self._ancestors:
            return "<cycle>"
        self._ancestors.add(id(value))
        try:
            return convert(value, depth)
        finally:
            self._ancestors.discard(id(value))

    def _convert_other(self, value: Any, depth: int) -> Any:
        if value is None or isinstance(value, bool):
            self.size += 5
            return value
        if isinstance(value, int):
            self.size += 8
            return value if abs(value) < 2**63 else str(value)
        if isinstance(value, float):
            self.size += 8
            return value if math.isfinite(value) else str(value)
        if isinstance(value, str):
            self.size += len(value) + 2
            return value[: self.limit]
        if isinstance(value, (bytes, bytearray, memoryview)):
            text = f"<{len(value)} bytes>"
            self.size += len(text)
            return text
        return self._nested(value, depth, self._convert_container)

    def _convert_container(self, value: Any, depth: int) -> Any:
        if isinstance(value, Mapping):
            return self._convert_mapping(value, depth)
        if isinstance(value, (list, tuple, set, frozenset)):
            return self._convert_items(value, len(value), depth)
        plain = _plain_form(value)
        if plain is _NO_PLAIN_FORM:
            text = _safe_repr(value, self.budget)
            self.size += len(text)
            return text
        return self.convert(plain, depth + 1)

    def _convert_mapping(self, value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        limit, convert = self.limit, self.convert
        known_keys, is_secret_key = self.redactor.known_keys, self.redactor.is_secret_key
        for index, (key, item) in enumerate(value.items()):
            if self.size > limit or self.nodes > _MAX_NODES:
                self.gave_up = True
                out["…"] = f"{len(value) - index} more keys"
                break
            name = key if type(key) is str else _key_text(key)
            self.size += len(name) + 4
            secret = known_keys.get(name)
            if secret is None:
                secret = is_secret_key(name)
            out[name] = REDACTED if secret else convert(item, depth + 1)
        return out

    def _convert_list(self, value: list[Any], depth: int) -> list[Any]:
        return self._convert_items(value, len(value), depth)

    def _convert_items(self, items: Iterable[Any], count: int, depth: int) -> list[Any]:
        out: list[Any] = []
        limit, convert = self.limit, self.convert
        for index, item in enumerate(items):
            if self.size > limit or self.nodes > _MAX_NODES:
                self.gave_up = True
                out.append(f"… {count - index} more items")
                break
            out.append(convert(item, depth + 1))
            self.size += 1
        return out


def _key_text(key: Any) -> str:
    return key if isinstance(key, str) else _safe_repr(key, 100)


_NO_PLAIN_FORM = object()


def _plain_form(value: Any) -> Any:
    """A simpler stand-in for well-known types, or `_NO_PLAIN_FORM`."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID, PurePath)):
        return str(value)
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
    dump = getattr(value, "model_dump", None)  # pydantic v2 models
    if callable(dump) and not isinstance(value, type):
        try:
            return dump(mode="json")
        except Exception:
            return _NO_PLAIN_FORM
    return _NO_PLAIN_FORM


def _safe_repr(value: Any, limit: int) -> str:
    try:
        text = repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"
    return text if len(text) <= limit else text[:limit]


def summarize(value: Any) -> str:
    """A content-free description: type, size and (for mappings) the top-level keys."""
    try:
        return _summarize(value)
    except Exception as exc:
        from otel_agents.runtime import report_internal_error

        report_internal_error("summarize", exc)
        return type(value).__name__


def _summarize(value: Any) -> str:
    kind = type(value).__name__
    if isinstance(value, str):
        return f"str of {len(value)} chars"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"{kind} of {len(value)} bytes"
    if isinstance(value, Mapping):
        count = len(value)
        return f"{kind} with {count} key{'' if count == 1 else 's'}{_key_list(value.keys())}"
    if isinstance(value, (list, tuple, set, frozenset)):
        return f"{kind} of {len(value)} items"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = [f.name for f in dataclasses.fields(value)]
        return f"{kind} (dataclass) with {len(names)} fields{_key_list(names)}"
    fields = getattr(type(value), "model_fields", None)
    if isinstance(fields, Mapping):
        return f"{kind} (model) with {len(fields)} fields{_key_list(fields.keys())}"
    return kind


def _key_list(keys: Iterable[Any], shown: int = 12) -> str:
    names = [str(k) for _, k in zip(range(shown + 1), keys, strict=False)]
    more = ", …" if len(names) > shown else ""
    return f": {', '.join(names[:shown])}{more}" if names else ""
