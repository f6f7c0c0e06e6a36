"""Fault injection into the package's own functions, found by introspection.

`profile(scenario)` runs a scenario under `sys.setprofile` and returns the code objects of
otel_agents that ran, split into *entries* (called straight from application or SDK code:
the boundaries, whose bodies are the guards) and *internal* functions (called from our own
code). `inject(code)` makes one function raise `InjectedFault` wherever it is referenced:
it swaps the `__code__` of every live function with that code, and of the enclosing
function for closures made per call. `fired` records where and when a fault was raised.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import sysconfig
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import otel_agents

PACKAGE_DIR = str(Path(otel_agents.__file__).resolve().parent)
_STDLIB = str(Path(sysconfig.get_paths()["stdlib"]).resolve())
_EXPRESSIONS = frozenset({"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>", "<module>"})


class InjectedFault(Exception):
    """The fault a swapped function raises."""


@dataclass
class Window:
    """Marks, from application code, when a tool call is being opened (before its body)."""

    open: bool = False
    fired_in_window: bool = False
    fired: list[str] = field(default_factory=list)


WINDOW = Window()


def fire(name: str) -> InjectedFault:
    """Called by a swapped function: note the fault, hand back the exception to raise."""
    WINDOW.fired.append(name)
    if WINDOW.open:
        WINDOW.fired_in_window = True
    return InjectedFault(name)


def ours(code: types.CodeType) -> bool:
    return code.co_filename.startswith(PACKAGE_DIR) and code.co_name not in _EXPRESSIONS


@dataclass
class CallPaths:
    entries: set[types.CodeType] = field(default_factory=set)
    internal: set[types.CodeType] = field(default_factory=set)

    @property
    def injectable(self) -> list[types.CodeType]:
        """Internal functions that are never entered straight from outside."""
        found = self.internal - self.entries
        return sorted(found, key=lambda c: (c.co_filename, c.co_firstlineno, c.co_name))


def _passes_through(code: types.CodeType) -> bool:
    """Frames between two functions of ours that belong to neither the application nor us:
    the standard library (contextlib, weakref, ...) and code it generates (a dataclass's
    `__init__` calling our `__post_init__`)."""
    return code.co_filename.startswith(_STDLIB) or code.co_filename == "<string>"


def _caller_is_ours(frame: types.FrameType) -> bool:
    """Whether the nearest caller that is not a pass-through is our code."""
    caller = frame.f_back
    while caller is not None and _passes_through(caller.f_code):
        caller = caller.f_back
    return caller is not None and caller.f_code.co_filename.startswith(PACKAGE_DIR)


def profile(scenario: Callable[[], Any]) -> CallPaths:
    paths = CallPaths()

    def on_event(frame: types.FrameType, event: str, arg: Any) -> None:
        if event != "call" or not ours(frame.f_code):
            return
        (paths.internal if _caller_is_ours(frame) else paths.entries).add(frame.f_code)

    sys.setprofile(on_event)
    try:
        scenario()
    finally:
        sys.setprofile(None)
    return paths


# -- injection -----------------------------------------------------------------------------


def _raiser_code(code: types.CodeType) -> types.CodeType:
    """Code that raises `InjectedFault`, with the same free variables as `code` (so it fits
    the closure of every function that has `code`)."""
    names = code.co_freevars
    lines = ["def _outer():"]
    lines += [f"    {free} = None" for free in names]
    lines.append("    def _inner(*args, **kwargs):")
    if names:
        lines.append(f"        ({', '.join(names)},)")
    name = getattr(code, "co_qualname", code.co_name)
    lines.append(f"        raise __import__('fault_injection').fire({name!r})")
    lines.append("    return _inner")
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), namespace)
    raiser: types.CodeType = namespace["_outer"]().__code__
    return raiser


class FunctionIndex:
    """Every live function of the package, by code object; and which code holds which."""

    def __init__(self) -> None:
        self.functions: dict[types.CodeType, list[types.FunctionType]] = {}
        self.parents: dict[types.CodeType, types.CodeType] = {}
        for obj in gc.get_objects():
            if isinstance(obj, types.FunctionType) and obj.__code__.co_filename.startswith(
                PACKAGE_DIR
            ):
                self.functions.setdefault(obj.__code__, []).append(obj)
        for code in list(self.functions):
            self._index_consts(code)

    def _index_consts(self, code: types.CodeType) -> None:
        for const in code.co_consts:
            if isinstance(const, types.CodeType) and const not in self.parents:
                self.parents[const] = code
                self._index_consts(const)

    def refresh(self, codes: set[types.CodeType]) -> None:
        """Learn functions made since (decorated tools, ...), and where nested codes live."""
        for code in codes:
            self._index_consts(code)

    @contextlib.contextmanager
    def injected(self, code: types.CodeType) -> Iterator[None]:
        swaps: list[tuple[types.FunctionType, types.CodeType]] = []
        try:
            self._replace(code, _raiser_code(code), swaps)
            yield
        finally:
            for function, original in reversed(swaps):
                function.__code__ = original

    def _replace(
        self,
        code: types.CodeType,
        new: types.CodeType,
        swaps: list[tuple[types.FunctionType, types.CodeType]],
    ) -> None:
        for function in self.functions.get(code, []):
            swaps.append((function, function.__code__))
            function.__code__ = new
        parent = self.parents.get(code)
        if parent is not None and parent.co_name != "<module>":
            consts = tuple(new if c is code else c for c in parent.co_consts)
            self._replace(parent, parent.replace(co_consts=consts), swaps)
