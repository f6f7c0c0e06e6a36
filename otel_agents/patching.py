"""Wrapping methods with wrapt, undoably, beside other instrumentations.

Its own module (not the adapter kit's), and wrapt imported only when something is wrapped
with it: `instrument()` imports this module (`thread_context.py` walks wrapper chains with
`wrapper_in_chain`) and should import neither the inference core nor wrapt, which brings
asyncio, ssl and `importlib.metadata`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


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
        import wrapt  # here, not at import: `instrument()` imports this module, not wrapt

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
        import wrapt

        # `==` (in): a bound method is made anew on each access, but compares equal.
        return wrapper_in_chain(
            method,
            lambda found: isinstance(found, wrapt.FunctionWrapper)
            and getattr(found, "_self_wrapper", None) in self._wrappers,
        )


def wrapper_in_chain(method: Any, is_ours: Callable[[Any], bool]) -> Any:
    """The first of `method` and the wrappers under it (`__wrapped__`) that `is_ours`;
    else None."""
    for _ in range(32):  # a chain of wrappers is short; never loop on a strange one
        if method is None:
            return None
        if is_ours(method):
            return method
        method = getattr(method, "__wrapped__", None)
    return None


def _own_attribute(owner: Any, name: str) -> Any:
    namespace = getattr(owner, "__dict__", None)
    return namespace.get(name) if namespace is not None else getattr(owner, name, None)


__all__ = ["Patcher", "wrapper_in_chain"]
