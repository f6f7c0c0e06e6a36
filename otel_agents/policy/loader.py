"""Loading a policy from YAML, with errors that point at the file, line and column.

We walk PyYAML's node tree (`yaml.compose`) rather than the plain data, because nodes keep
their position: every error names where it is and what is wrong, and unknown keys are
errors (a typo such as `tools:` for `tool:` must not silently match everything).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from otel_agents.config import POLICY_FILE_ENV as POLICY_FILE_ENV
from otel_agents.config import POLICY_MODE_ENV as POLICY_MODE_ENV
from otel_agents.errors import PolicyError
from otel_agents.policy.model import (
    ApprovalSettings,
    Defaults,
    Limit,
    Limits,
    Match,
    Mode,
    OnError,
    Outcome,
    Policy,
    Rule,
    Verdict,
)

PolicySource = Policy | str | os.PathLike[str]
_logger = logging.getLogger("otel_agents")
E = TypeVar("E")


def load_policy(source: PolicySource) -> Policy:
    """A `Policy` from a file path, YAML text, or a `Policy` (returned as is).

    A `str` containing a line break is YAML text; any other `str` or path-like is a file
    name. Raises `PolicyError` naming the file, line and column of the first problem.
    """
    if isinstance(source, Policy):
        return source
    if isinstance(source, str) and "\n" in source:
        return parse_policy(source, "<policy>")
    path = Path(source)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyError(
            f"cannot read the policy file: {exc.strerror or exc}", str(path)
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _line_and_column(data, exc.start)
        raise PolicyError(
            f"byte 0x{data[exc.start]:02x} is not UTF-8 text (is this the policy file?)",
            str(path),
            line,
            column,
        ) from None
    return parse_policy(text, str(path))


def _line_and_column(text: str | bytes, offset: int) -> tuple[int, int]:
    newline: Any = b"\n" if isinstance(text, bytes) else "\n"
    line_start = text.rfind(newline, 0, offset) + 1
    return text.count(newline, 0, offset) + 1, offset - line_start + 1


def parse_policy(text: str, name: str = "<policy>") -> Policy:
    """Parse YAML text into a `Policy`; `name` is used in error messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, ...)
        line, column = _line_and_column(text, exc.position)
        character = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise PolicyError(
            f"character {character!r} is not allowed in a policy file", name, line, column
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise PolicyError(
            f"invalid YAML: {problem}",
            name,
            mark.line + 1 if mark else None,
            mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as exc:  # any other reader failure, still as a PolicyError
        raise PolicyError(f"invalid YAML: {exc}", name) from None
    if root is None:
        raise PolicyError("the policy is empty", name, 1, 1)
    return _Reader(name).policy(root)


def has_unclosed_bracket(pattern: str) -> bool:
    """Whether a glob has a `[` that fnmatch reads as a literal for want of its `]`: such a
    pattern only matches a name with that `[` in it, which no tool or agent has."""
    index = pattern.find("[")
    while index != -1:
        end = index + 1
        if end < len(pattern) and pattern[end] == "!":
            end += 1
        if end < len(pattern) and pattern[end] == "]":
            end += 1
        close = pattern.find("]", end)
        if close == -1:
            return True
        index = pattern.find("[", close + 1)
    return False


# -- the reader ------------------------------------------------------------------------

_TOP_KEYS = ("version", "name", "mode", "on_error", "defaults", "approval", "limits", "rules")
_RULE_KEYS = ("id", "match", "verdict", "reason", "mode", "approval")
_MATCH_KEYS = ("agent", "tool", "tags", "reversible", "impact_scope", "min_records", "arguments")
_DEFAULTS_KEYS = ("verdict", "irreversible", "max_records", "over_max_records")
_APPROVAL_KEYS = (
    "timeout_seconds",
    "on_timeout",
    "on_error",
    "channel",
    "directory",
    "host",
    "port",
)
_RULE_APPROVAL_KEYS = ("timeout_seconds", "on_timeout", "on_error")
_LIMITS_KEYS = ("retries", "spend")
_RETRY_KEYS = ("max_failures", "verdict")
_SPEND_KEYS = ("per_request", "per_run")
_SPEND_LIMIT_KEYS = ("max_usd", "verdict")

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"


class _Reader:
    def __init__(self, name: str) -> None:
        self.name = name
        self.base_approval = ApprovalSettings()

    # -- errors ----------------------------------------------------------------------

    def error(self, node: yaml.Node, path: str, problem: str) -> PolicyError:
        mark = node.start_mark
        where = f"{path}: " if path else ""
        return PolicyError(f"{where}{problem}", self.name, mark.line + 1, mark.column + 1)

    @contextlib.contextmanager
    def located(self, node: yaml.Node, path: str) -> Iterator[None]:
        """Give a model-level `PolicyError` (raised without a position) the node's position."""
        try:
            yield
        except PolicyError as exc:
            if exc.line is not None:
                raise
            raise self.error(node, path, exc.problem) from None

    # -- shapes ----------------------------------------------------------------------

    def mapping(
        self, node: yaml.Node, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, path, f"expected a mapping with keys {', '.join(allowed)}")
        values: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str) or key_node.tag != _STR:
                raise self.error(key_node, path, "keys must be plain names")
            if key not in allowed:
                raise self.error(key_node, path, _unknown_key(key, allowed))
            if key in values:
                raise self.error(key_node, path, f"key {key!r} is given twice")
            values[key] = value_node
        for key in required:
            if key not in values:
                raise self.error(node, path, f"missing required key {key!r}")
        return values

    def scalar(self, node: yaml.Node, path: str, tags: tuple[str, ...], expected: str) -> Any:
        if not isinstance(node, yaml.ScalarNode) or node.tag not in tags:
            raise self.error(node, path, f"expected {expected}, got {_describe(node)}")
        return _construct(node)

    def string(self, node: yaml.Node, path: str) -> str:
        """A plain scalar's text. YAML 1.1 reads `no`, `on` or `1.0` as booleans and numbers;
        where we expect a name, the text as written is what the author meant."""
        if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL:
            raise self.error(node, path, f"expected a string, got {_describe(node)}")
        return str(node.value)

    def boolean(self, node: yaml.Node, path: str) -> bool:
        value: bool = self.scalar(node, path, (_BOOL,), "true or false")
        return value

    def integer(self, node: yaml.Node, path: str, minimum: int = 0) -> int:
        value: int = self.scalar(node, path, (_INT,), "a whole number")
        if value < minimum:
            raise self.error(node, path, f"must be {minimum} or more, got {value}")
        return value

    def number(self, node: yaml.Node, path: str) -> float:
        value = self.scalar(node, path, (_INT, _FLOAT), "a number")
        if value < 0:
            raise self.error(node, path, f"must be 0 or more, got {value}")
        return float(value)

    def choice(self, node: yaml.Node, path: str, kind: type[E]) -> E:
        choices = [str(m.value) for m in kind]  # type: ignore[attr-defined]
        if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL:
            raise self.error(node, path, f"expected one of {', '.join(choices)}")
        value = str(node.value)
        if value not in choices:
            raise self.error(node, path, f"{value!r} is not one of {', '.join(choices)}")
        return kind(value)  # type: ignore[call-arg]

    def verdict(self, node: yaml.Node, path: str) -> Verdict:
        return self.choice(node, path, Verdict)

    def strings(self, node: yaml.Node, path: str) -> tuple[str, ...]:
        """One string or a list of strings."""
        if isinstance(node, yaml.SequenceNode):
            return tuple(self.string(item, f"{path}[{i}]") for i, item in enumerate(node.value))
        return (self.string(node, path),)

    # -- sections --------------------------------------------------------------------

    def policy(self, node: yaml.Node) -> Policy:
        top = self.mapping(node, "", _TOP_KEYS)
        if "version" in top and self.integer(top["version"], "version") != 1:
            raise self.error(top["version"], "version", "only version 1 is supported")
        options: dict[str, Any] = {"source": self.name}
        # `approval` before `rules`: a rule's approval settings start from the policy's.
        readers: dict[str, Callable[[yaml.Node, str], Any]] = {
            "name": self.string,
            "mode": lambda n, p: self.choice(n, p, Mode),
            "on_error": lambda n, p: self.choice(n, p, OnError),
            "defaults": self.defaults,
            "approval": lambda n, p: self.approval(n, p, _APPROVAL_KEYS),
            "limits": self.limits,
            "rules": self.rules,
        }
        for key, read in readers.items():
            if key in top:
                options[key] = read(top[key], key)
                if key == "approval":
                    self.base_approval = options[key]
        if options.get("mode") is Mode.ENFORCE and options.get("on_error") is OnError.FAIL_OPEN:
            mark = top["on_error"].start_mark
            _logger.warning(
                "%s:%d:%d: on_error: fail_open in enforce mode lets a tool call run when the"
                " policy cannot be evaluated for it (governance fails closed by default)",
                self.name, mark.line + 1, mark.column + 1,
            )  # fmt: skip
        with self.located(node, ""):
            return Policy(**options)

    def rules(self, node: yaml.Node, path: str) -> tuple[Rule, ...]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, path, f"expected a list of rules, got {_describe(node)}")
        rules: list[Rule] = []
        seen: dict[str, yaml.Node] = {}
        for index, item in enumerate(node.value):
            rule = self.rule(item, f"rules[{index}]")
            if rule.id in seen:
                line = seen[rule.id].start_mark.line + 1
                raise self.error(
                    item, f"rules[{index}]", f"id {rule.id!r} is already used on line {line}"
                )
            seen[rule.id] = item
            rules.append(rule)
        return tuple(rules)

    def rule(self, node: yaml.Node, path: str) -> Rule:
        fields = self.mapping(node, path, _RULE_KEYS, required=("id", "verdict"))
        options: dict[str, Any] = {
            "id": self.string(fields["id"], f"{path}.id"),
            "verdict": self.verdict(fields["verdict"], f"{path}.verdict"),
        }
        if "match" in fields:
            options["match"] = self.match(fields["match"], f"{path}.match")
        if "reason" in fields:
            options["reason"] = self.string(fields["reason"], f"{path}.reason")
        if "mode" in fields:
            options["mode"] = self.choice(fields["mode"], f"{path}.mode", Mode)
        if "approval" in fields:
            options["approval"] = self.approval(
                fields["approval"], f"{path}.approval", _RULE_APPROVAL_KEYS
            )
        options["line"] = node.start_mark.line + 1
        if "match" in fields:
            self.warn_unmatchable(fields["match"], options["id"])
        with self.located(node, path):
            return Rule(**options)

    def warn_unmatchable(self, node: yaml.Node, rule_id: str) -> None:
        """Warn about names that can never match (`'[unclosed'`): a load still succeeds."""
        if not isinstance(node, yaml.MappingNode):
            return
        for key_node, value_node in node.value:
            if key_node.value not in ("agent", "tool", "tags", "impact_scope"):
                continue
            items = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for item in items:
                if isinstance(item, yaml.ScalarNode) and has_unclosed_bracket(str(item.value)):
                    mark = item.start_mark
                    _logger.warning(
                        "%s:%d:%d: rule %r: %s pattern %r can never match: its '[' is never"
                        " closed (write '[[]' for a literal '[')",
                        self.name, mark.line + 1, mark.column + 1, rule_id,
                        key_node.value, item.value,
                    )  # fmt: skip

    def match(self, node: yaml.Node, path: str) -> Match:
        fields = self.mapping(node, path, _MATCH_KEYS)
        options: dict[str, Any] = {}
        for key in ("agent", "tool", "tags", "impact_scope"):
            if key in fields:
                options[key] = self.strings(fields[key], f"{path}.{key}")
        if "reversible" in fields:
            options["reversible"] = self.boolean(fields["reversible"], f"{path}.reversible")
        if "min_records" in fields:
            options["min_records"] = self.integer(fields["min_records"], f"{path}.min_records")
        if "arguments" in fields:
            arguments = fields["arguments"]
            if not isinstance(arguments, yaml.MappingNode):
                raise self.error(arguments, f"{path}.arguments", "expected a mapping")
            options["arguments"] = _construct(arguments)
        with self.located(node, path):
            return Match(**options)

    def defaults(self, node: yaml.Node, path: str) -> Defaults:
        fields = self.mapping(node, path, _DEFAULTS_KEYS)
        options: dict[str, Any] = {}
        for key in ("verdict", "irreversible", "over_max_records"):
            if key in fields:
                options[key] = self.verdict(fields[key], f"{path}.{key}")
        if "max_records" in fields:
            value = fields["max_records"]
            options["max_records"] = (
                None if value.tag == _NULL else self.integer(value, f"{path}.max_records")
            )
        with self.located(node, path):
            return Defaults(**options)

    def approval(self, node: yaml.Node, path: str, allowed: tuple[str, ...]) -> ApprovalSettings:
        fields = self.mapping(node, path, allowed)
        options: dict[str, Any] = dataclasses.asdict(self.base_approval)
        if "timeout_seconds" in fields:
            options["timeout_seconds"] = self.number(
                fields["timeout_seconds"], f"{path}.timeout_seconds"
            )
        for key in ("on_timeout", "on_error"):
            if key in fields:
                options[key] = self.choice(fields[key], f"{path}.{key}", Outcome)
        for key in ("channel", "directory", "host"):
            if key in fields:
                options[key] = self.string(fields[key], f"{path}.{key}")
        if "port" in fields:
            options["port"] = self.integer(fields["port"], f"{path}.port")
        with self.located(node, path):
            return ApprovalSettings(**options)

    def limits(self, node: yaml.Node, path: str) -> Limits:
        fields = self.mapping(node, path, _LIMITS_KEYS)
        options: dict[str, Limit] = {}
        if "retries" in fields:
            retry_path = f"{path}.retries"
            retries = self.mapping(fields["retries"], retry_path, _RETRY_KEYS, ("max_failures",))
            options["max_failures"] = Limit(
                self.integer(retries["max_failures"], f"{retry_path}.max_failures", minimum=1),
                self.optional_verdict(retries, retry_path, Verdict.ESCALATE),
            )
        if "spend" in fields:
            spend = self.mapping(fields["spend"], f"{path}.spend", _SPEND_KEYS)
            for key, default in (
                ("per_request", Verdict.REQUIRE_APPROVAL),
                ("per_run", Verdict.DENY),
            ):
                if key in spend:
                    limit_path = f"{path}.spend.{key}"
                    limit = self.mapping(spend[key], limit_path, _SPEND_LIMIT_KEYS, ("max_usd",))
                    options[f"{key}_usd"] = Limit(
                        self.number(limit["max_usd"], f"{limit_path}.max_usd"),
                        self.optional_verdict(limit, limit_path, default),
                    )
        return Limits(**options)

    def optional_verdict(
        self, fields: Mapping[str, yaml.Node], path: str, default: Verdict
    ) -> Verdict:
        if "verdict" not in fields:
            return default
        return self.verdict(fields["verdict"], f"{path}.verdict")


def _construct(node: yaml.Node) -> Any:
    """The Python value of a node, with YAML's usual typing of scalars."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    kinds = {_INT: "a whole number", _FLOAT: "a number", _BOOL: "a boolean", _NULL: "nothing"}
    return kinds.get(node.tag, f"{node.value!r}")


def _unknown_key(key: str, allowed: tuple[str, ...]) -> str:
    message = f"unknown key {key!r} (allowed: {', '.join(allowed)})"
    close = difflib.get_close_matches(key, allowed, n=1)
    return message + (f"; did you mean {close[0]!r}?" if close else "")
