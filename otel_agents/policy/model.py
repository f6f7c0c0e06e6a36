"""The policy model: what a policy file says, as plain frozen dataclasses.

Build one in Python or load it from YAML (`otel_agents.policy.load_policy`); both end up as
the same objects, checked the same way. Reading order of a policy:

1. `rules`, in order: the first rule whose `match` fits the call decides its verdict.
2. No rule matched: `defaults` decide (irreversible tools and calls touching many records
   need approval; anything else gets `defaults.verdict`).
3. `limits` (retries of a failing call, spend per request and per run) apply on top: when
   one is exceeded and its verdict is stricter, it wins.

Verdicts from mildest to strictest: allow, require_approval, escalate, deny.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from otel_agents.errors import PolicyError


class Verdict(str, enum.Enum):
    """What the policy says about a tool call (`otel_agents.policy.verdict`)."""

    ALLOW = "allow"
    REQUIRE_APPROVAL = "require_approval"
    ESCALATE = "escalate"
    DENY = "deny"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {
    Verdict.ALLOW: 0,
    Verdict.REQUIRE_APPROVAL: 1,
    Verdict.ESCALATE: 2,
    Verdict.DENY: 3,
}


class Mode(str, enum.Enum):
    """`observe` records verdicts and runs the call anyway; `enforce` applies them."""

    OBSERVE = "observe"
    ENFORCE = "enforce"


class OnError(str, enum.Enum):
    """What an internal error during evaluation means: run the call, or deny it."""

    FAIL_OPEN = "fail_open"
    FAIL_CLOSED = "fail_closed"


class Outcome(str, enum.Enum):
    """The default outcome of an approval that got no answer (timeout) or failed."""

    APPROVE = "approve"
    REJECT = "reject"


def _strings(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _enum(kind: type[enum.Enum], value: Any, what: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in kind)
        raise PolicyError(f"{what}: {value!r} is not one of {choices}") from None


@dataclass(frozen=True)
class Match:
    """Which calls a rule applies to. Every given condition must hold; empty means any.

    `agent`, `tool`, `tags` and `impact_scope` take names or glob patterns (`writes:*`); a
    call matches `tags` when any of its tags matches any pattern. `min_records` matches
    calls that touch at least that many records. `arguments` maps an argument name to the
    value (or list of values) it must have.
    """

    agent: tuple[str, ...] = ()
    tool: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    reversible: bool | None = None
    impact_scope: tuple[str, ...] = ()
    min_records: int | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("agent", "tool", "tags", "impact_scope"):
            object.__setattr__(self, name, _strings(getattr(self, name)))
        if self.min_records is not None and self.min_records < 0:
            raise PolicyError(f"match.min_records must be 0 or more, got {self.min_records}")


@dataclass(frozen=True)
class ApprovalSettings:
    """How long to wait for a human, and what happens without an answer.

    `channel` picks a built-in approver when `instrument(approver=...)` gives none:
    `terminal`, `file` (with `directory`) or `http` (with `host`, `port`).
    """

    timeout_seconds: float = 300.0
    on_timeout: Outcome = Outcome.REJECT
    on_error: Outcome = Outcome.REJECT
    channel: str | None = None
    directory: str | None = None
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "on_timeout", _enum(Outcome, self.on_timeout, "on_timeout"))
        object.__setattr__(self, "on_error", _enum(Outcome, self.on_error, "on_error"))
        if self.timeout_seconds <= 0:
            raise PolicyError(f"timeout_seconds must be positive, got {self.timeout_seconds}")
        if self.channel not in (None, "terminal", "file", "http"):
            raise PolicyError(f"channel: {self.channel!r} is not one of terminal, file, http")
        if self.channel == "file" and not self.directory:
            raise PolicyError("channel 'file' needs a directory")


@dataclass(frozen=True)
class Rule:
    """One rule: when `match` fits, the verdict is `verdict`, explained by `reason`.

    `mode: observe` records this rule's verdicts without enforcing them even when the
    policy enforces (roll a new rule out safely). `approval` overrides the policy's
    approval timeout and default outcomes for this rule.
    """

    id: str
    verdict: Verdict
    match: Match = field(default_factory=Match)
    reason: str | None = None
    mode: Mode | None = None
    approval: ApprovalSettings | None = None
    line: int | None = field(default=None, compare=False)  # in the policy file, for messages

    def __post_init__(self) -> None:
        if not self.id or not isinstance(self.id, str):
            raise PolicyError("every rule needs a non-empty string id")
        object.__setattr__(self, "verdict", _enum(Verdict, self.verdict, f"rule {self.id}"))
        if self.mode is not None:
            object.__setattr__(self, "mode", _enum(Mode, self.mode, f"rule {self.id} mode"))


@dataclass(frozen=True)
class Defaults:
    """Verdicts for calls no rule matched; contract properties feed these.

    A tool declared irreversible gets `irreversible`; a call touching more than
    `max_records` records gets `over_max_records`; anything else gets `verdict`. Set
    `irreversible` or `over_max_records` to `allow` to turn them off.
    """

    verdict: Verdict = Verdict.ALLOW
    irreversible: Verdict = Verdict.REQUIRE_APPROVAL
    max_records: int | None = 1
    over_max_records: Verdict = Verdict.REQUIRE_APPROVAL

    def __post_init__(self) -> None:
        for name in ("verdict", "irreversible", "over_max_records"):
            object.__setattr__(self, name, _enum(Verdict, getattr(self, name), name))


@dataclass(frozen=True)
class Limit:
    """A numeric limit and the verdict a call gets when it would pass it."""

    max: float
    verdict: Verdict

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", _enum(Verdict, self.verdict, "verdict"))
        if self.max < 0:
            raise PolicyError(f"a limit must be 0 or more, got {self.max}")


@dataclass(frozen=True)
class Limits:
    """Hard limits that apply on top of the rules (the stricter verdict wins).

    - `max_failures`: once the same call (same tool, same arguments) has failed this many
      times in a run, each further attempt gets the limit's verdict (typically `escalate`).
    - `per_request_usd`: a single call whose declared cost is above `max` gets the verdict.
    - `per_run_usd`: a call that would take the run's spend (LLM cost plus declared tool
      costs so far, plus this call) above `max` gets the verdict.
    """

    max_failures: Limit | None = None
    per_request_usd: Limit | None = None
    per_run_usd: Limit | None = None


@dataclass(frozen=True)
class Policy:
    """A whole policy. `mode` defaults to `observe`, the safe way to roll out."""

    rules: tuple[Rule, ...] = ()
    mode: Mode = Mode.OBSERVE
    on_error: OnError = OnError.FAIL_CLOSED
    defaults: Defaults = field(default_factory=Defaults)
    limits: Limits = field(default_factory=Limits)
    approval: ApprovalSettings = field(default_factory=ApprovalSettings)
    name: str | None = None
    source: str | None = None  # the file it came from, for messages

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))
        object.__setattr__(self, "mode", _enum(Mode, self.mode, "mode"))
        object.__setattr__(self, "on_error", _enum(OnError, self.on_error, "on_error"))
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise PolicyError(f"rule id {rule.id!r} is used twice", self.source)
            seen.add(rule.id)

    def with_mode(self, mode: Mode | str) -> Policy:
        return replace(self, mode=_enum(Mode, mode, "mode"))
