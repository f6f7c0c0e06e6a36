"""A warning, once, for policy rules that name a tool no code ever defines or calls.

A rule for `grant_permision` (a typo) or for a tool that was renamed never matches, and
the policy silently governs nothing. Tools are only known once the application has
imported its code, so the check runs when the first agent run ends: the names rules give
are compared with every tool defined with `@otel_agents.tool` and every tool called so far.
"""

from __future__ import annotations

import difflib
import fnmatch
import logging
import threading
from typing import TYPE_CHECKING

from otel_agents.core.tool import registered_tool_names
from otel_agents.policy.model import Policy, Rule
from otel_agents.runtime import Observer

if TYPE_CHECKING:
    from otel_agents.core.agent import AgentRun
    from otel_agents.core.tool import ToolInvocation

_logger = logging.getLogger("otel_agents")
_MAX_SEEN = 10_000


class UnknownToolCheck(Observer):
    """Warns once about rules whose `tool` names or patterns match no known tool."""

    def __init__(self, policy: Policy) -> None:
        self._rules = [rule for rule in policy.rules if rule.match.tool]
        self._source = policy.source or "<policy>"
        self._seen: set[str] = set()
        self._done = not self._rules
        self._lock = threading.Lock()

    def on_tool_start(self, invocation: ToolInvocation) -> None:
        if self._done or len(self._seen) >= _MAX_SEEN:
            return
        name = getattr(getattr(invocation, "spec", None), "name", None)
        if isinstance(name, str):
            self._seen.add(name)

    def on_run_end(self, run: AgentRun) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        known = registered_tool_names() | self._seen
        for rule in self._rules:
            unknown = [p for p in rule.match.tool if not fnmatch.filter(known, p)]
            for pattern in unknown:
                self._warn(rule, pattern, known)

    def _warn(self, rule: Rule, pattern: str, known: frozenset[str]) -> None:
        close = difflib.get_close_matches(pattern, sorted(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        where = f"{self._source}:{rule.line}" if rule.line else self._source
        _logger.warning(
            "%s: rule %r names tool %r, but no tool of that name is defined or was called%s;"
            " the rule never applies. Known tools: %s",
            where,
            rule.id,
            pattern,
            hint,
            ", ".join(sorted(known)[:20]) or "none",
        )
