"""Values worked out once per object, found by the object's identity.

For objects that are unhashable (genai-prices' prices) or whose own hash or equality
would cost more than the lookup saves (tool specs, SDK URL objects), on hot paths. Each
entry holds its object, so the object's id cannot be reused by another while the entry
lives; past `limit` entries the cache starts over, so memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
V = TypeVar("V")


class IdentityCache(Generic[T, V]):
    def __init__(self, compute: Callable[[T], V], limit: int) -> None:
        self._compute = compute
        self._limit = limit
        self._entries: dict[int, tuple[T, V]] = {}

    def get(self, obj: T) -> V:
        entry = self._entries.get(id(obj))
        if entry is not None and entry[0] is obj:
            return entry[1]
        value = self._compute(obj)
        if len(self._entries) >= self._limit:
            self._entries.clear()
        self._entries[id(obj)] = (obj, value)
        return value
