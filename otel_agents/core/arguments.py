"""Arguments as keys: a bounded, canonical digest of a tool call's arguments.

The run matches a model's tool call request to the execution that answers it by name and
arguments, and counts retries of the same call by a fingerprint of both. Arguments are
whatever the application passes (hostile values included), so the digest is bounded in
time and size and never runs code of the value's own type.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import itertools
import json
import pathlib
import uuid
from typing import Any

try:  # hashlib's own BLAKE2, without hashlib's OpenSSL set-up (~5 ms at start-up)
    from _blake2 import blake2b
except ImportError:  # an interpreter without it
    from hashlib import blake2b

from otel_agents.runtime import report_internal_error


def fingerprint(name: str, arguments_key: str | None) -> str:
    """A short, stable hash of a tool name and its arguments' key."""
    digest = blake2b(digest_size=8)
    digest.update(name.encode("utf-8", "replace"))
    digest.update(b"\x00")
    digest.update((arguments_key or "").encode("utf-8", "replace"))
    return digest.hexdigest()


def canonical_arguments(arguments: Any) -> str | None:
    """A digest of the arguments, for matching requests to executions and fingerprints.

    Equal arguments give equal keys whatever the key order, and a JSON string (as models
    send tool arguments) is parsed first, so the model's `'{"b": 1, "a": 2}'` and the
    application's `{"a": 2, "b": 1}` match. The work is bounded whatever the value (see
    `ArgumentDigest`), and no code of the value's own type runs. Never raises.
    """
    if arguments is None:
        return None
    try:
        arguments = _parsed_json(arguments)
        if type(arguments) is dict:
            plain = _plain_dict_text(arguments)  # the common case, at C speed
            if plain is not None:
                return _digest(plain)
    except Exception as exc:  # not expected: the full walk guards each step
        report_internal_error("argument key", exc)
    return ArgumentDigest.of(arguments).key


_PLAIN_ITEMS = 32
_PLAIN_SCALARS = (int, float, bool, type(None))


def _plain_dict_text(arguments: dict[Any, Any]) -> str | None:
    """Text of a small dict of string keys and plain scalar values (what tools take most
    often), or None. Every `repr` here is the built-in one of an exact built-in type."""
    if dict.__len__(arguments) > _PLAIN_ITEMS:
        return None
    for key, value in dict.items(arguments):
        kind = type(value)
        if type(key) is not str or len(key) > _SAMPLED:
            return None
        if kind is str:
            if len(value) > _SAMPLED:
                return None
        elif kind not in _PLAIN_SCALARS or (kind is int and not -_SMALL_INT < value < _SMALL_INT):
            return None
    return "P" + repr(sorted(dict.items(arguments)))


def _digest(text: str) -> str:
    return blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


# Bounds of one pass over an argument set: a hostile value (a 10 MB blob, a million items,
# ten thousand levels) costs about what a large ordinary one does. Values past a bound
# still count by their size, so identical calls keep matching and most different ones
# still differ.
MAX_KEY_NODES = 256  # values visited
MAX_KEY_DEPTH = 32  # levels of nesting followed
MAX_KEY_CHARS = 32_768  # characters (or bytes) of strings and blobs read
MAX_JSON_PARSE = 16_384  # a longer JSON string is keyed as text, not parsed
_SAMPLED = 1_024  # a longer string or blob is read as head, tail and spaced samples
_SAMPLE_WINDOWS = 8
_SAMPLE_WIDTH = 64
_SMALL_INT = 2**63


class ArgumentDigest:
    """One bounded pass over a value, feeding a canonical text form into a hash.

    It reads values with the built-in types' own methods (`dict.items(d)`, never `d.items()`
    of a subclass) and never calls `repr`, `str`, `__eq__`, `__hash__` or iteration of a
    type it does not know: an unknown object counts by its type and instance attributes.
    `nodes`, `depth` and `chars` say how much was read, `complete` whether all of it.
    """

    __slots__ = ("_parts", "chars", "complete", "depth", "key", "nodes")

    def __init__(self) -> None:
        self.nodes = 0
        self.depth = 0
        self.chars = 0
        self.complete = True
        self.key: str | None = None
        self._parts: list[str] = []

    @classmethod
    def of(cls, arguments: Any) -> ArgumentDigest:
        digest = cls()
        if arguments is None:
            return digest
        try:
            digest._add(_parsed_json(arguments), 0)
            text = "\x1f".join(digest._parts)
        except Exception as exc:  # not expected: key by type only
            report_internal_error("argument key", exc)
            text, digest.complete = f"?{type(arguments).__qualname__}", False
        digest.key = _digest(text)
        digest._parts = []
        return digest

    def _add(self, value: Any, depth: int) -> None:
        parts = self._parts
        self.nodes += 1
        if self.nodes > MAX_KEY_NODES or depth > MAX_KEY_DEPTH:
            self.complete = False
            parts.append("~")
            return
        if depth > self.depth:
            self.depth = depth
        cls = type(value)
        if cls is str:
            self._text("s", value)
        elif cls is bool or value is None:
            parts.append(f"b{value}")
        elif cls is int:
            if -_SMALL_INT < value < _SMALL_INT:
                parts.append(f"i{value}")
            else:
                self.complete = False
                parts.append(_big_int(value))
        elif cls is float:
            parts.append(f"f{float.__repr__(value)}")
        elif isinstance(value, dict):
            self._mapping(dict.items(value), dict.__len__(value), depth)
        elif isinstance(value, (list, tuple)):
            length = list.__len__(value) if isinstance(value, list) else tuple.__len__(value)
            items = list.__iter__(value) if isinstance(value, list) else tuple.__iter__(value)
            self._sequence(items, length, depth)
        else:
            self._other(value, depth)

    def _text(self, tag: str, text: str) -> None:
        """A string: whole if short, else sampled; the length always counts. A subclass's
        own `__len__` and `__getitem__` are not called."""
        length = str.__len__(text)
        budget = MAX_KEY_CHARS - self.chars
        if length <= min(_SAMPLED, budget):
            self.chars += length
            self._parts.append(tag + str.__getitem__(text, slice(None)))
            return
        self.complete = False
        if budget < _SAMPLED:
            self._parts.append(f"{tag}#{length}")
            return
        self.chars += _SAMPLED
        pieces = _sample_ranges(length)
        self._parts.append(
            f"{tag}#{length}:" + "|".join(str.__getitem__(text, slice(a, b)) for a, b in pieces)
        )

    def _mapping(self, items: Any, length: int, depth: int) -> None:
        room = MAX_KEY_NODES - self.nodes
        taken = list(itertools.islice(items, max(room, 0)))
        if len(taken) < length:
            self.complete = False
        if all(type(key) is str for key, _ in taken):
            taken.sort(key=_first)
        else:
            taken.sort(key=lambda item: _sort_text(item[0]))
        self._parts.append(f"{{{length}")
        for key, item in taken:
            if type(key) is str:
                self._text("k", key)
            else:
                self._parts.append("k" + _sort_text(key))
            self._add(item, depth + 1)
        self._parts.append("}")

    def _sequence(self, items: Any, length: int, depth: int) -> None:
        self._parts.append(f"[{length}")
        room = MAX_KEY_NODES - self.nodes
        if length > room:
            self.complete = False
        for item in itertools.islice(items, max(room, 0)):
            self._add(item, depth + 1)
        self._parts.append("]")

    def _other(self, value: Any, depth: int) -> None:
        """Subclasses of the plain types by their base type's methods, well-known standard
        types by their text form, anything else by type name and instance attributes."""
        parts = self._parts
        if isinstance(value, str):  # str enums and other subclasses
            self._text("s", value)
        elif isinstance(value, int):
            parts.append(f"i{int.__repr__(int.__int__(value))}")
        elif isinstance(value, float):
            parts.append(f"f{float.__repr__(value)}")
        elif isinstance(value, (bytes, bytearray, memoryview)):
            self._blob(value)
        elif isinstance(value, (set, frozenset)):
            self._set(value, depth)
        elif type(value) in _STANDARD_TEXT_TYPES:  # exact types: their `str` is the stdlib's
            parts.append(f"t{_type_name(value)}:{value}")
        elif isinstance(value, enum.Enum):
            parts.append(f"e{_type_name(value)}:{object.__getattribute__(value, '_name_')}")
        else:
            parts.append(f"o{_type_name(value)}")
            state = _instance_dict(value)
            if state is not None:
                self._add(state, depth + 1)

    def _blob(self, value: bytes | bytearray | memoryview) -> None:
        """Bytes through a flat memoryview: no copy of the whole, no subclass methods."""
        try:
            view = memoryview(value)
            if view.ndim != 1 or view.format != "B":
                view = view.cast("B")  # raises for a view that is not contiguous
        except (TypeError, ValueError):
            self.complete = False
            self._parts.append(f"x?{_type_name(value)}")
            return
        length = view.nbytes
        budget = MAX_KEY_CHARS - self.chars
        if length <= min(_SAMPLED, budget):
            self.chars += length
            self._parts.append("x" + view.hex())
            return
        self.complete = False
        if budget < _SAMPLED:
            self._parts.append(f"x#{length}")
            return
        self.chars += _SAMPLED
        pieces = _sample_ranges(length)
        self._parts.append(f"x#{length}:" + "|".join(view[a:b].hex() for a, b in pieces))

    def _set(self, value: set[Any] | frozenset[Any], depth: int) -> None:
        if isinstance(value, set):
            length, members = set.__len__(value), set.__iter__(value)
        else:
            length, members = frozenset.__len__(value), frozenset.__iter__(value)
        room = MAX_KEY_NODES - self.nodes
        taken = sorted(itertools.islice(members, max(room, 0)), key=_sort_text)
        if len(taken) < length:
            self.complete = False
        self._parts.append(f"<{length}")
        for item in taken:
            self._add(item, depth + 1)
        self._parts.append(">")


_STANDARD_TEXT_TYPES = frozenset(
    {
        datetime.datetime,
        datetime.date,
        datetime.time,
        datetime.timedelta,
        decimal.Decimal,
        uuid.UUID,
        pathlib.PurePosixPath,
        pathlib.PureWindowsPath,
        pathlib.PosixPath,
        pathlib.WindowsPath,
    }
)


def _first(item: tuple[str, Any]) -> str:
    return item[0]


def _sample_ranges(length: int) -> list[tuple[int, int]]:
    """Head, tail and evenly spaced windows of a long string or blob, `_SAMPLED` in all."""
    edge = (_SAMPLED - _SAMPLE_WINDOWS * _SAMPLE_WIDTH) // 2
    step = (length - 2 * edge) // (_SAMPLE_WINDOWS + 1)
    ranges = [(0, edge), (length - edge, length)]
    ranges.extend(
        (edge + step * i, edge + step * i + _SAMPLE_WIDTH) for i in range(1, _SAMPLE_WINDOWS + 1)
    )
    return ranges


def _big_int(value: int) -> str:
    """A huge int without its decimal text (slow, and capped by the interpreter)."""
    bits = value.bit_length()
    mask = (1 << 64) - 1
    return f"I{'-' if value < 0 else ''}{bits}:{abs(value) & mask}:{abs(value) >> (bits - 64)}"


def _sort_text(value: Any) -> str:
    """A stable text to order keys and set members by, without their own methods."""
    cls = type(value)
    if cls is str:
        return "s" + str.__getitem__(value, slice(_SAMPLED))
    if cls is bool or value is None:
        return f"b{value}"
    if cls is int:
        return f"i{value}" if -_SMALL_INT < value < _SMALL_INT else _big_int(value)
    if cls is float:
        return f"f{float.__repr__(value)}"
    return "o" + _type_name(value)


def _type_name(value: Any) -> str:
    cls = type(value)
    try:
        module = type.__getattribute__(cls, "__module__")
        return f"{module}.{type.__getattribute__(cls, '__qualname__')}"
    except Exception:
        return "?"


def _instance_dict(value: Any) -> dict[str, Any] | None:
    """An object's own attributes (pydantic models and dataclasses keep their fields
    there), read without its `__getattr__`; None if it has none."""
    try:
        state = object.__getattribute__(value, "__dict__")
    except Exception:
        return None
    return state if type(state) is dict else None


def _parsed_json(arguments: Any) -> Any:
    """A JSON string (or bytes) of modest size as the value it encodes; else unchanged."""
    if type(arguments) not in (str, bytes) or len(arguments) > MAX_JSON_PARSE:
        return arguments
    try:
        return json.loads(arguments)
    except (ValueError, TypeError, RecursionError):
        return arguments
