"""Wrapping methods with wrapt, undoably, beside other instrumentations.

Its own module (not the adapter kit's) so that what `instrument()` patches at once (thread
start and pool submission: `thread_context.py`) does not import the inference core.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import wrapt


@dataclass
class Patcher:
    """Wraps methods with wrapt and undoes exactly what it did.

    Another instrumentation may wrap the same methods, before us or after us. Before us: we
    wrap on top of its wrapper, and both record. After us: on `unwrap_all` its wrapper stays
    where it is (removing ours from under it would remove it too) and ours, still inside,
    goes quiet (the adapter's `active` is False).
    """

    _patched: list[tuple[Any, str, Any]] = field(default_factory=list)  # (owner, name, ours)
    _wrappers: list[Callable[..., Any]] = field(default_factory=list)  # every one we used

    def wrap(self, owner: Any, name: str, wrapper: Callable[..., Any]) -> None:
        if wrapper not in self._wrappers:
            self._wrappers.append(wrapper)
        found = self.ours_in(_own_attribute(owner, name))
        if found is not None:
            # Never wrap twice: ours may sit under someone's, from an earlier patch. Keep
            # it on the list, so that `unwrap_all` removes it once it is on top again.
            if not any(ours is found for _, _, ours in self._patched):
                self._patched.append((owner, name, found))
            return
        wrapt.wrap_function_wrapper(owner, name, wrapper)
        self._patched.append((owner, name, _own_attribute(owner, name)))

    def unwrap_all(self) -> None:
        for owner, name, ours in reversed(self._patched):
            if _own_attribute(owner, name) is ours:
                setattr(owner, name, ours.__wrapped__)
        self._patched.clear()

    def is_ours(self, method: Any) -> bool:
        return self.ours_in(method) is not None

    def ours_in(self, method: Any) -> Any:
        """Our wrapper, if it is `method` or under it in a chain of wrappers; else None."""
        for _ in range(32):  # a chain of wrappers is short; never loop on a strange one
            if not isinstance(method, wrapt.FunctionWrapper):
                return None
            # `==`: a bound method is made anew on each access, but compares equal.
            if getattr(method, "_self_wrapper", None) in self._wrappers:
                return method
            method = method.__wrapped__
        return None


def _own_attribute(owner: Any, name: str) -> Any:
    namespace = getattr(owner, "__dict__", None)
    return namespace.get(name) if namespace is not None else getattr(owner, name, None)


__all__ = ["Patcher"]
