"""Turning arbitrary Python values into span-safe text: serialize, scrub secrets, truncate.

Tool arguments and results can be anything: objects that are not JSON, cyclic structures,
bytes, ten-megabyte strings. `Capturer.text()` never raises and does bounded work: it walks
the value once with a character budget, replaces what JSON cannot hold with a short
description, masks secrets by key (`api_key`, `Authorization`, ...) and by value pattern
(provider API keys, bearer tokens, JWTs, passwords in URLs), and cuts the result to
`max_length` with a marker that records the original size.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePath
from typing import Any

REDACTED = "[REDACTED]"

_MAX_DEPTH = 24
_MAX_NODES = 5_000
_REDACTION_SLACK = 256  # scrub a little past the cut so a secret on the boundary is caught

# (markers, pattern): a pattern runs only on text whose lower-cased form contains one of
# its markers, so ordinary text costs a few substring tests instead of a regex scan. Each
# pattern marks the secret part with the group (?P<S>...); without it the whole match is
# the secret. Prefixes such as "Bearer " or "password=" stay readable.
_BUILTIN_SECRET_PATTERNS: tuple[tuple[tuple[str, ...], str], ...] = (
    # PEM private keys
    (
        ("private key",),
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
    ),
    # OpenAI (sk-, sk-proj-, sk-svcacct-, sk-admin-) and Anthropic (sk-ant-api03-...) keys
    (("sk-",), r"\bsk-[A-Za-z0-9_-]{20,}"),
    # Google API keys
    (("aiza",), r"\bAIza[0-9A-Za-z_-]{35}"),
    # AWS access key ids
    (("akia", "asia"), r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    # GitHub tokens
    (("gh", "github_pat_"), r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    # Slack tokens
    (("xox",), r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    # Stripe keys
    (("_live_", "_test_"), r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"),
    # Hugging Face, Groq, Replicate tokens
    (("hf_", "gsk_", "r8_"), r"\b(?:hf_[A-Za-z0-9]{30,}|gsk_[A-Za-z0-9]{20,}|r8_[A-Za-z0-9]{30,})"),
    # JSON Web Tokens
    (("eyj",), r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
    # Authorization schemes
    (("bearer", "basic", "token"), r"(?i)\b(?:bearer|basic|token)\s+(?P<S>[A-Za-z0-9._~+/=-]{8,})"),
    # header lines: Authorization: ..., Cookie: ..., X-Api-Key: ...
    (
        ("authorization", "cookie", "api-key"),
        r"(?im)\b(?:proxy-)?(?:authorization|cookie|set-cookie|x-api-key|api-key)\b\s*:\s*"
        r"(?P<S>[^\r\n]+)",
    ),
    # key=value and "key": "value" pairs in free text
    (
        ("key", "pass", "pwd", "secret", "token"),
        r"(?i)[\"']?\b(?:api[_-]?key|apikey|password|passwd|pwd|secret|client[_-]?secret|"
        r"access[_-]?token|refresh[_-]?token|auth[_-]?token|id[_-]?token|session[_-]?token|"
        r"private[_-]?key|token)\b[\"']?\s*[:=]\s*[\"']?(?P<S>[^\s\"',;&}]{3,})",
    ),
    # passwords in URLs: scheme://user:password@host
    (("://",), r"(?i)\b[a-z][a-z0-9+.-]*://[^\s:/@]+:(?P<S>[^\s@/]+)@"),
)  # fmt: skip

# Dict keys whose values are masked whole. Anchored so that `max_tokens` or
# `input_tokens` (usage counts) are not mistaken for secrets.
_BUILTIN_SECRET_KEYS: tuple[str, ...] = (
    r"(?i)^(?:.*[-_])?(?:api[-_]?key|apikey|secret|password|passwd|pwd|token|auth|"
    r"authorization|proxy-authorization|cookie|set-cookie|session[-_]?id|private[-_]?key|"
    r"credentials?|x-api-key)$",
)


class _PatternSet:
    """Alternation of secret patterns, each marking its secret part with (?P<S>...)."""

    def __init__(self, patterns: Sequence[str]) -> None:
        alternatives = []
        self.secret_groups: list[str | None] = []
        for index, pattern in enumerate(patterns):
            marked = "(?P<S>" in pattern
            pattern = pattern.replace("(?P<S>", f"(?P<s{index}>")
            flags, body = _split_inline_flags(pattern)
            scoped = f"(?{flags}:{body})" if flags else body
            alternatives.append(f"(?P<p{index}>{scoped})")
            self.secret_groups.append(f"s{index}" if marked else None)
        self.regex = re.compile("|".join(alternatives)) if alternatives else None

    def scrub(self, text: str) -> str:
        return self.regex.sub(self._replace, text) if self.regex is not None else text

    def _replace(self, match: re.Match[str]) -> str:
        name = match.lastgroup or ""
        group = self.secret_groups[int(name[1:])] if name.startswith("p") else None
        if group is None or match.group(group) is None:
            return REDACTED
        start, end = match.span(group)
        offset = match.start()
        whole = match.group(0)
        return whole[: start - offset] + REDACTED + whole[end - offset :]


class Redactor:
    """Masks secrets in text and decides which mapping keys hold secrets."""

    def __init__(self, extra_patterns: Sequence[str] = (), extra_keys: Sequence[str] = ()) -> None:
        self._builtin = [
            (set(markers), _PatternSet([pattern])) for markers, pattern in _BUILTIN_SECRET_PATTERNS
        ]
        every_marker = sorted({m for markers, _ in _BUILTIN_SECRET_PATTERNS for m in markers})
        self._markers = re.compile("|".join(re.escape(m) for m in every_marker))
        self._extra = _PatternSet(extra_patterns)  # user patterns: no markers, always run
        key_patterns = list(_BUILTIN_SECRET_KEYS) + list(extra_keys)
        self._key_patterns = [re.compile(p) for p in key_patterns]
        self._key_cache: dict[str, bool] = {}

    def scrub(self, text: str) -> str:
        """Replace every secret in `text` with [REDACTED]."""
        found = set(self._markers.findall(text.lower()))
        if found:
            for markers, patterns in self._builtin:
                if markers & found:
                    text = patterns.scrub(text)
        return self._extra.scrub(text)

    def is_secret_key(self, key: str) -> bool:
        cached = self._key_cache.get(key)
        if cached is None:
            cached = any(p.search(key) for p in self._key_patterns)
            if len(self._key_cache) < 4096:
                self._key_cache[key] = cached
        return cached


def _split_inline_flags(pattern: str) -> tuple[str, str]:
    """Move a leading global flag group like `(?i)` into a scoped group for alternation."""
    found = re.match(r"^\(\?([aiLmsux]+)\)", pattern)
    if not found:
        return "", pattern
    return found.group(1), pattern[found.end() :]


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
    """One bounded pass that turns a value into JSON-compatible data."""

    def __init__(self, budget: int, redactor: Redactor) -> None:
        self.budget = budget
        self.redactor = redactor
        self.size = 0  # estimated characters of the full (uncut) JSON text
        self.nodes = 0
        self.gave_up = False
        self._ancestors: set[int] = set()

    def convert(self, value: Any, depth: int) -> Any:
        self.nodes += 1
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
            return value[: self.budget + _REDACTION_SLACK]
        if isinstance(value, (bytes, bytearray, memoryview)):
            text = f"<{len(value)} bytes>"
            self.size += len(text)
            return text
        if depth >= _MAX_DEPTH:
            self.gave_up = True
            return "<too deep>"
        if id(value) in self._ancestors:
            return "<cycle>"
        self._ancestors.add(id(value))
        try:
            return self._convert_container(value, depth)
        finally:
            self._ancestors.discard(id(value))

    def _exhausted(self) -> bool:
        return self.size > self.budget + _REDACTION_SLACK or self.nodes > _MAX_NODES

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
        for index, (key, item) in enumerate(value.items()):
            if self._exhausted():
                self.gave_up = True
                out["…"] = f"{len(value) - index} more keys"
                break
            name = key if isinstance(key, str) else _safe_repr(key, 100)
            self.size += len(name) + 4
            if self.redactor.is_secret_key(name):
                out[name] = REDACTED
            else:
                out[name] = self.convert(item, depth + 1)
        return out

    def _convert_items(self, items: Iterable[Any], count: int, depth: int) -> list[Any]:
        out: list[Any] = []
        for index, item in enumerate(items):
            if self._exhausted():
                self.gave_up = True
                out.append(f"… {count - index} more items")
                break
            out.append(self.convert(item, depth + 1))
            self.size += 1
        return out


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
