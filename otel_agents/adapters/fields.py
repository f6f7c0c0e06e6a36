"""Reading fields from SDK models and plain mappings alike, for every client adapter.

Request bodies are dicts (possibly holding the SDKs' `Omit` / `NotGiven` sentinels for
unset parameters); responses and stream chunks are pydantic models; an accumulator may
hand a reader a dict it built. These readers take either, and they sit on every call's
path (a stream reads a dozen fields per chunk), so the common cases come first and cost
a type check and a dict lookup each.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.util.types import AttributeValue

_MISSING: Any = object()
_OMITTED = frozenset({"Omit", "NotGiven"})  # the SDKs' sentinels for unset parameters
_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})
_MAX_KNOWN_TYPES = 1024
# What a type is, learnt once per type (an ABC check per read would cost more than the read).
_OBJECT, _MAPPING, _PYDANTIC = 0, 1, 2
_type_kinds: dict[type, int] = {dict: _MAPPING}


def field_of(obj: Any, key: str, default: Any = None) -> Any:
    """`obj[key]` for a mapping, `obj.key` for an SDK model; `default` when absent or
    when the SDK's "not given" sentinel."""
    cls = type(obj)
    if cls is dict:
        value = obj.get(key, _MISSING)
    elif obj is None:
        return default
    else:
        kind = _type_kinds.get(cls)
        if kind is None:
            kind = _learn_type(cls)
        if kind == _MAPPING:
            value = obj.get(key, _MISSING)
        elif kind == _PYDANTIC:
            # A pydantic model keeps its fields in its instance dict: one lookup, and
            # never a "not given" sentinel there.
            instance_fields = obj.__dict__
            if key in instance_fields:
                return instance_fields[key]
            value = _missing_field(obj, cls, key)
        else:
            value = getattr(obj, key, _MISSING)
    if value is _MISSING or type(value).__name__ in _OMITTED:
        return default
    return value


def _missing_field(obj: Any, cls: type, key: str) -> Any:
    """A name not in a pydantic model's instance dict. Plain `getattr` would go through
    pydantic's `__getattr__` and an exception (slow): its extras are all that would look
    at, unless the class has it (a property, a method)."""
    if key.startswith("_") or hasattr(cls, key):
        return getattr(obj, key, _MISSING)
    extra = obj.__pydantic_extra__
    return extra.get(key, _MISSING) if isinstance(extra, dict) else _MISSING


def fields_of(obj: Any) -> Mapping[str, Any]:
    """The fields of a stream chunk (or any SDK model or mapping) to read with `.get`.

    For the per-chunk path of streams: one call per object, then a plain dict lookup per
    field. A pydantic model's instance dict is handed out as it is (read it, never write
    it); other objects get a view that reads through `field_of`. Chunks come from the
    server, so they hold no "not given" sentinels.
    """
    cls = type(obj)
    if cls is dict:
        return obj  # type: ignore[no-any-return]
    if obj is None:
        return _NO_FIELDS
    kind = _type_kinds.get(cls)
    if kind is None:
        kind = _learn_type(cls)
    if kind == _MAPPING:
        return obj  # type: ignore[no-any-return]
    if kind == _PYDANTIC:
        extra = obj.__pydantic_extra__
        return {**obj.__dict__, **extra} if extra else obj.__dict__
    return _AttributeView(obj)


class _AttributeView(Mapping[str, Any]):
    """An object other than a pydantic model, read like a mapping (through `field_of`)."""

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    def get(self, key: str, default: Any = None) -> Any:
        return field_of(self._obj, key, default)

    def __getitem__(self, key: str) -> Any:
        value = field_of(self._obj, key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0


def _learn_type(cls: type) -> int:
    if issubclass(cls, Mapping):
        kind = _MAPPING
    elif hasattr(cls, "__pydantic_fields__") and hasattr(cls, "__pydantic_extra__"):
        kind = _PYDANTIC
    else:
        kind = _OBJECT
    if len(_type_kinds) < _MAX_KNOWN_TYPES:
        _type_kinds[cls] = kind
    return kind


@functools.lru_cache(maxsize=256)
def server_of_url(url: str | None) -> tuple[str | None, int | None]:
    """(`server.address`, `server.port`) of a client's endpoint URL, the port defaulted by
    scheme. A client keeps its URL: parsed once per URL, not on every call."""
    if not url:
        return None, None
    try:
        parts = urlsplit(url)
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    except ValueError:  # a malformed port
        return None, None
    return parts.hostname, port


def is_omitted(value: Any) -> bool:
    return type(value).__name__ in _OMITTED


def items(value: Any) -> Sequence[Any]:
    """A list or tuple as it is; anything else as no items. Other iterables (generators)
    are left alone: they may be one-shot, and the SDK has yet to read them."""
    cls = type(value)
    if cls is list or cls is tuple or isinstance(value, (list, tuple)):
        return value  # type: ignore[no-any-return]
    return ()


def text(value: Any) -> str | None:
    """A string (possibly empty), else None."""
    return value if isinstance(value, str) else None


def nonempty_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def integer(value: Any) -> int | None:
    """An int that is not a bool, else None."""
    cls = type(value)
    if cls is int or (cls is not bool and isinstance(value, int)):
        return value  # type: ignore[no-any-return]
    return None


def number(value: Any) -> float | None:
    """An int or float (not a bool) as a float, else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def strings(value: Any) -> list[str] | None:
    """The strings of a list (`stop_sequences`: others skipped); None when there are none."""
    found = [item for item in items(value) if isinstance(item, str)]
    return found or None


# (field, attribute, reader): one request parameter an adapter reads from a body or config.
Parameter = tuple[str, str, Callable[[Any], AttributeValue | None]]


def read_parameters(source: Any, parameters: Iterable[Parameter]) -> dict[str, AttributeValue]:
    """The `gen_ai.request.*` attributes of `source` (a request body, an SDK config object
    or dict): each field its reader accepts, under its attribute."""
    found: dict[str, AttributeValue] = {}
    for key, attribute, read in parameters:
        value = read(field_of(source, key))
        if value is not None:
            found[attribute] = value
    return found


def count(value: Any) -> int:
    """A token count or index: an int that is not a bool, else 0."""
    return integer(value) or 0


def error_in_body(result: Any) -> tuple[str, str | None] | None:
    """(error type, message) of an error object in a successful response's body, or None.

    Some OpenAI-compatible servers answer HTTP 200 with `{"error": {"message", "type",
    "code"}}`; Anthropic's shape is `{"type": "error", "error": {...}}`; a Responses API
    result that failed carries `error: {"code", "message"}`. The SDKs hand these back as
    results: without this, the call would be recorded as a success.
    """
    error = field_of(result, "error")
    if error is None:
        return None
    if isinstance(error, str):
        return ("error", error) if error else None
    fields = fields_of(error)
    if not fields:
        return None
    kind = fields.get("code") or fields.get("type")
    message = fields.get("message")
    error_type = str(kind) if isinstance(kind, (str, int)) and str(kind) else "error"
    return error_type, str(message) if message is not None else None
