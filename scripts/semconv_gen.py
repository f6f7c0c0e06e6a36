#!/usr/bin/env python3
"""Validate the otel-agents semantic-conventions registry and generate code and docs from it.

The registry is written in OpenTelemetry Weaver's `definition/2` format under
`semconv/model/`, with `semconv/manifest.yaml` as its manifest. Upstream names that we
emit but do not define are listed in `semconv/upstream/gen-ai.json`, a trimmed snapshot of
the GenAI conventions that records the upstream commit it was taken from. From these this
script generates:

- `otel_agents/semconv.py`: typed constants (attribute keys, enum values, metric and event
  names, metric units and bucket boundaries);
- `semconv/docs/attributes.md`: the Markdown reference.

Usage:

    python scripts/semconv_gen.py           # validate, then (re)write both files
    python scripts/semconv_gen.py --check   # validate; exit 1 with a diff if a file is stale

Only the standard library and PyYAML are needed.

`--check` stands in for OpenTelemetry Weaver's `weaver registry check`: Weaver is not
installable here from any package registry (release binaries and container images only),
so this script enforces what Weaver enforces on this registry, besides our own rules:

- it loads exactly the files Weaver loads: every `*.yaml` / `*.yml` under the registry root
  `semconv/` (recursively, hidden entries skipped, `manifest.yaml` excepted), so the
  upstream snapshot must not be one of them (it is JSON) and no stray YAML may sit there;
- the `definition/2` schema: known sections and fields, types, stabilities, examples that
  match their type, enum members;
- internal attribute groups (`visibility: internal`) carry no `brief`, `note` or
  `stability`; public groups need `brief` and `stability`;
- every signal's attribute `ref` has a `requirement_level`;
- refs resolve (to our attributes or the dependency's), none to a deprecated attribute;
- span, metric and event refinements point at signals that exist in the dependency (or in
  our registry) and are not deprecated there;
- the manifest's `schema_url` ends in a version, and its single dependency agrees with the
  snapshot on one version: the same `schema_url`, and a `registry_path` pinned to the
  snapshot's commit.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import json
import keyword
import re
import sys
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFEST_PATH = "semconv/manifest.yaml"
MODEL_DIR = "semconv/model"
REGISTRY_ROOT = "semconv"
UPSTREAM_PATH = "semconv/upstream/gen-ai.json"
WEAVER_SKIPPED_FILES = ("manifest.yaml", "schema-next.yaml")
PYTHON_OUT = "otel_agents/semconv.py"
MARKDOWN_OUT = "semconv/docs/attributes.md"
REGENERATE = "python scripts/semconv_gen.py"

PREFIX = "otel_agents."
FILE_FORMAT = "definition/2"
LINE_LENGTH = 100

SECTIONS = (
    "attributes",
    "attribute_groups",
    "spans",
    "span_refinements",
    "metrics",
    "metric_refinements",
    "events",
    "event_refinements",
)
UPSTREAM_SECTIONS = ("source", "attributes", "spans", "metrics", "events")
SOURCE_FIELDS = frozenset({"repository", "commit", "schema_url", "read", "files", "note"})
PRIMITIVE_TYPES = (
    "string",
    "int",
    "double",
    "boolean",
    "string[]",
    "int[]",
    "double[]",
    "boolean[]",
    "any",
)
STABILITIES = ("development", "alpha", "beta", "release_candidate", "stable")
SPAN_KINDS = ("client", "server", "internal", "producer", "consumer")
INSTRUMENTS = ("counter", "updowncounter", "gauge", "histogram")
REQUIREMENT_LEVELS = ("required", "recommended", "opt_in")
CONDITIONAL_LEVELS = ("conditionally_required", "recommended")

_SEGMENT = r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_SEGMENT}(?:\.{_SEGMENT})*$")
SCHEMA_URL_RE = re.compile(r"^https?://\S+/\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?$")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
DEPRECATION_REASONS = ("renamed", "obsoleted", "uncategorized")
# Notes that relate one of our names to upstream work (listed under "Upstream mapping notes").
UPSTREAM_REFERENCE_RE = re.compile(r"\b(?:PR|issue) #\d+|\bupstream\b|\banalogue\b", re.IGNORECASE)

ATTRIBUTE_FIELDS = frozenset(
    {"key", "type", "brief", "note", "examples", "stability", "deprecated", "annotations"}
)
MEMBER_FIELDS = frozenset(
    {"id", "value", "brief", "note", "stability", "deprecated", "annotations"}
)
REF_FIELDS = frozenset(
    {
        "ref",
        "ref_group",
        "requirement_level",
        "brief",
        "note",
        "examples",
        "sampling_relevant",
        "stability",
        "annotations",
    }
)
GROUP_FIELDS = frozenset({"id", "visibility", "brief", "note", "stability", "attributes"})
SPAN_FIELDS = frozenset(
    {
        "type",
        "kind",
        "name",
        "brief",
        "note",
        "stability",
        "attributes",
        "requirement_level",
        "entity_associations",
        "annotations",
        "deprecated",
    }
)
REFINEMENT_FIELDS = frozenset(
    {"id", "ref", "brief", "note", "stability", "attributes", "annotations"}
)
METRIC_FIELDS = frozenset(
    {
        "name",
        "instrument",
        "unit",
        "brief",
        "note",
        "stability",
        "attributes",
        "entity_associations",
        "annotations",
        "deprecated",
    }
)
EVENT_FIELDS = frozenset(
    {
        "name",
        "brief",
        "note",
        "stability",
        "attributes",
        "body",
        "entity_associations",
        "annotations",
        "deprecated",
    }
)
UPSTREAM_ATTRIBUTE_FIELDS = frozenset(
    {"key", "type", "brief", "note", "examples", "stability", "deprecated"}
)
UPSTREAM_SPAN_FIELDS = frozenset({"type", "kind", "brief", "note", "attributes"})
UPSTREAM_METRIC_FIELDS = frozenset(
    {"name", "instrument", "unit", "brief", "note", "buckets", "deprecated", "attributes"}
)
UPSTREAM_EVENT_FIELDS = frozenset({"name", "brief", "note", "attributes"})
DEPRECATED_FIELDS = frozenset({"reason", "renamed_to", "note"})


# -- model --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    id: str
    value: str | int
    brief: str
    note: str
    stability: str


@dataclass(frozen=True)
class Attribute:
    key: str
    type: str  # one of PRIMITIVE_TYPES, or "enum"
    members: tuple[Member, ...]
    brief: str
    note: str
    examples: tuple[object, ...]
    stability: str
    source: str
    upstream: bool
    deprecated: str = ""  # why and what replaces it, when upstream deprecated it

    @property
    def constant(self) -> str:
        return constant_name(self.key, self.upstream)

    @property
    def values_class(self) -> str:
        return values_class_name(self.key, self.upstream)

    @property
    def type_label(self) -> str:
        if self.type != "enum":
            return self.type
        base = "int" if all(isinstance(m.value, int) for m in self.members) else "string"
        return f"{base} enum"


@dataclass(frozen=True)
class AttributeRef:
    ref: str | None
    ref_group: str | None
    level: str  # required | recommended | opt_in | conditionally_required
    condition: str
    note: str

    @property
    def requirement(self) -> str:
        label = {
            "required": "Required",
            "recommended": "Recommended",
            "opt_in": "Opt-In",
            "conditionally_required": "Conditionally Required",
        }[self.level]
        return f"{label}: {self.condition}" if self.condition else label


@dataclass(frozen=True)
class AttributeGroup:
    id: str
    brief: str
    note: str
    attributes: tuple[AttributeRef, ...]
    source: str


@dataclass(frozen=True)
class Span:
    type: str
    kind: str
    name_note: str
    brief: str
    note: str
    stability: str
    attributes: tuple[AttributeRef, ...]
    source: str


@dataclass(frozen=True)
class Refinement:
    section: str  # span_refinements | metric_refinements | event_refinements
    id: str
    ref: str
    brief: str
    note: str
    stability: str
    attributes: tuple[AttributeRef, ...]
    source: str


@dataclass(frozen=True)
class Metric:
    name: str
    instrument: str
    unit: str
    brief: str
    note: str
    stability: str
    attributes: tuple[AttributeRef, ...]
    buckets: tuple[float, ...] | None
    source: str
    upstream: bool
    deprecated: str = ""

    @property
    def constant(self) -> str:
        return "METRIC_" + constant_name(self.name, self.upstream)


@dataclass(frozen=True)
class Event:
    name: str
    brief: str
    note: str
    stability: str
    attributes: tuple[AttributeRef, ...]
    source: str
    upstream: bool

    @property
    def constant(self) -> str:
        return "EVENT_" + constant_name(self.name, self.upstream)


@dataclass(frozen=True)
class UpstreamSpan:
    type: str
    kind: str
    brief: str
    note: str
    attributes: tuple[AttributeRef, ...] = ()


@dataclass(frozen=True)
class UpstreamSource:
    """Where the upstream snapshot was taken from."""

    repository: str = ""
    commit: str = ""
    schema_url: str = ""
    read: str = ""


@dataclass(frozen=True)
class Dependency:
    schema_url: str
    registry_path: str


@dataclass
class Registry:
    name: str = ""
    description: str = ""
    schema_url: str = ""
    stability: str = ""
    dependencies: list[Dependency] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    groups: list[AttributeGroup] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    refinements: list[Refinement] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    upstream_attributes: list[Attribute] = field(default_factory=list)
    upstream_spans: list[UpstreamSpan] = field(default_factory=list)
    upstream_metrics: list[Metric] = field(default_factory=list)
    upstream_events: list[Event] = field(default_factory=list)
    upstream_source: UpstreamSource = field(default_factory=UpstreamSource)

    def all_attributes(self) -> list[Attribute]:
        return self.attributes + self.upstream_attributes

    def attribute(self, key: str) -> Attribute | None:
        for attribute in self.all_attributes():
            if attribute.key == key:
                return attribute
        return None

    def group(self, group_id: str) -> AttributeGroup | None:
        for group in self.groups:
            if group.id == group_id:
                return group
        return None

    def expand(
        self, refs: Sequence[AttributeRef], _seen: frozenset[str] = frozenset()
    ) -> list[AttributeRef]:
        """The attribute refs with every `ref_group` replaced by the group's refs."""
        expanded: list[AttributeRef] = []
        for ref in refs:
            if ref.ref is not None:
                expanded.append(ref)
                continue
            group = self.group(ref.ref_group or "")
            if group is None or group.id in _seen:
                continue
            expanded.extend(self.expand(group.attributes, _seen | {group.id}))
        return expanded


# -- naming ---------------------------------------------------------------------------------


def _short(name: str, upstream: bool) -> str:
    return name if upstream or not name.startswith(PREFIX) else name[len(PREFIX) :]


def constant_name(name: str, upstream: bool) -> str:
    """`otel_agents.handoff.from` -> `HANDOFF_FROM`;
    `gen_ai.tool.call.id` -> `GEN_AI_TOOL_CALL_ID`."""
    return _short(name, upstream).upper().replace(".", "_")


def values_class_name(key: str, upstream: bool) -> str:
    """`otel_agents.policy.verdict` -> `PolicyVerdictValues`; `gen_ai.token.type` ->
    `GenAiTokenTypeValues`."""
    parts = re.split(r"[._]", _short(key, upstream))
    return "".join(part[:1].upper() + part[1:] for part in parts if part) + "Values"


def member_constant(member_id: str) -> str:
    return member_id.upper().replace(".", "_")


def namespace(key: str) -> str:
    """The namespace group a key is listed under: `otel_agents.run.cost.usd` ->
    `otel_agents.run`, `gen_ai.tool.call.id` -> `gen_ai.tool`, `server.port` -> `server`."""
    parts = key.split(".")
    if parts[0] == PREFIX[:-1] or len(parts) > 2:
        return ".".join(parts[:2])
    return parts[0]


# -- loading and validation -----------------------------------------------------------------


class Problems:
    """Collected validation errors; each names the file and the item it is about."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.messages.append(f"{where}: {message}")

    def __bool__(self) -> bool:
        return bool(self.messages)


def _read_yaml(path: Path, rel: str, problems: Problems) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except FileNotFoundError:
        problems.add(rel, "file not found")
    except yaml.YAMLError as error:
        problems.add(rel, f"not valid YAML: {error}")
    return None


def _text(
    item: Mapping[str, Any], name: str, where: str, problems: Problems, required: bool = True
) -> str:
    value = item.get(name)
    if value is None:
        if required:
            problems.add(where, f"missing '{name}'")
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        problems.add(where, f"'{name}' must be a non-empty string")
        return ""
    return value.strip()


def _unknown_fields(
    item: Mapping[str, Any], allowed: frozenset[str], where: str, problems: Problems
) -> None:
    for name in item:
        if name not in allowed:
            problems.add(where, f"unknown field '{name}' (allowed: {', '.join(sorted(allowed))})")


def _stability(item: Mapping[str, Any], where: str, problems: Problems) -> str:
    value = _text(item, "stability", where, problems)
    if value and value not in STABILITIES:
        problems.add(where, f"stability '{value}' is not one of {', '.join(STABILITIES)}")
    return value


def _items(
    data: Mapping[str, Any], section: str, rel: str, problems: Problems
) -> list[Mapping[str, Any]]:
    value = data.get(section)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add(rel, f"section '{section}' must be a list")
        return []
    items: list[Mapping[str, Any]] = []
    for index, item in enumerate(value):
        if isinstance(item, Mapping):
            items.append(item)
        else:
            problems.add(rel, f"{section}[{index}] must be a mapping")
    return items


def _check_name(name: str, what: str, where: str, problems: Problems, ours: bool) -> None:
    if not NAME_RE.match(name):
        problems.add(
            where,
            f"{what} '{name}' must be lowercase snake_case segments separated by dots",
        )
    if ours and not name.startswith(PREFIX):
        problems.add(where, f"{what} '{name}' must start with '{PREFIX}'")
    if not ours and name.startswith(PREFIX):
        problems.add(where, f"{what} '{name}' is ours: define it in {MODEL_DIR}/, not upstream")


def _example_matches(value: object, type_: str, members: tuple[Member, ...]) -> bool:
    if type_ == "any":
        return True
    if type_ == "enum":
        return any(value == member.value for member in members)
    if type_.endswith("[]"):
        return isinstance(value, list) and all(
            _example_matches(v, type_[:-2], members) for v in value
        )
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "boolean":
        return isinstance(value, bool)
    if type_ == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "double":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return False


def _examples(
    item: Mapping[str, Any], type_: str, members: tuple[Member, ...], where: str, problems: Problems
) -> tuple[object, ...]:
    raw = item.get("examples")
    if raw is None:
        return ()
    if type_.endswith("[]"):
        # Either one array example or a list of array examples.
        examples = raw if isinstance(raw, list) and all(isinstance(x, list) for x in raw) else [raw]
    else:
        examples = raw if isinstance(raw, list) else [raw]
    for example in examples:
        if not _example_matches(example, type_, members):
            problems.add(where, f"example {example!r} does not match type '{type_}'")
    return tuple(examples)


def _members(raw: Any, where: str, problems: Problems) -> tuple[Member, ...]:
    if not isinstance(raw, Mapping) or set(raw) != {"members"}:
        problems.add(where, "an enum type must be a mapping with only 'members'")
        return ()
    items = raw["members"]
    if not isinstance(items, list) or not items:
        problems.add(where, "enum 'members' must be a non-empty list")
        return ()
    members: list[Member] = []
    ids: set[str] = set()
    values: set[str | int] = set()
    for index, item in enumerate(items):
        member_where = f"{where}, member #{index + 1}"
        if not isinstance(item, Mapping):
            problems.add(member_where, "must be a mapping")
            continue
        member_id = _text(item, "id", member_where, problems)
        if member_id:
            member_where = f"{where}, member '{member_id}'"
            if not NAME_RE.match(member_id):
                problems.add(member_where, "member id must be lowercase snake_case (dots allowed)")
            if member_id in ids:
                problems.add(member_where, "duplicate member id")
            ids.add(member_id)
        _unknown_fields(item, MEMBER_FIELDS, member_where, problems)
        value = item.get("value")
        if value is None:
            problems.add(member_where, "missing 'value'")
            value = ""
        elif isinstance(value, bool) or not isinstance(value, (str, int)):
            problems.add(member_where, "member 'value' must be a string or an int")
            value = ""
        elif value in values:
            problems.add(member_where, f"duplicate member value {value!r}")
        values.add(value)
        members.append(
            Member(
                id=member_id,
                value=value,
                brief=_text(item, "brief", member_where, problems),
                note=_text(item, "note", member_where, problems, required=False),
                stability=_stability(item, member_where, problems),
            )
        )
    kinds = {type(m.value) for m in members}
    if len(kinds) > 1:
        problems.add(where, "enum member values must all be strings or all be ints")
    return tuple(members)


def _deprecated(item: Mapping[str, Any], where: str, problems: Problems) -> str:
    """An upstream deprecation (`{reason, renamed_to?, note?}`) as one line of text."""
    raw = item.get("deprecated")
    if raw is None:
        return ""
    if not isinstance(raw, Mapping) or raw.get("reason") not in DEPRECATION_REASONS:
        problems.add(
            where,
            f"'deprecated' must be a mapping with a 'reason' ({', '.join(DEPRECATION_REASONS)})",
        )
        return "deprecated"
    _unknown_fields(raw, DEPRECATED_FIELDS, f"{where}, deprecated", problems)
    renamed_to = raw.get("renamed_to")
    if raw["reason"] == "renamed" and not isinstance(renamed_to, str):
        problems.add(where, "a 'renamed' deprecation needs 'renamed_to'")
    parts = [f"Renamed to `{renamed_to}`." if isinstance(renamed_to, str) else ""]
    parts.append(_text(raw, "note", where, problems, required=False))
    return " ".join(p for p in parts if p) or str(raw["reason"]).capitalize() + "."


def _attribute(
    item: Mapping[str, Any], rel: str, problems: Problems, upstream: bool
) -> Attribute | None:
    key = _text(item, "key", f"{rel}: attribute", problems)
    if not key:
        return None
    where = f"{rel}: attribute '{key}'"
    _check_name(key, "key", where, problems, ours=not upstream)
    _unknown_fields(
        item, UPSTREAM_ATTRIBUTE_FIELDS if upstream else ATTRIBUTE_FIELDS, where, problems
    )
    raw_type = item.get("type")
    members: tuple[Member, ...] = ()
    if raw_type is None:
        problems.add(where, "missing 'type'")
        type_ = "any"
    elif isinstance(raw_type, str):
        type_ = raw_type
        if raw_type not in PRIMITIVE_TYPES:
            problems.add(
                where,
                f"type '{raw_type}' is not one of {', '.join(PRIMITIVE_TYPES)} "
                "or an enum ({members: [...]})",
            )
    else:
        type_ = "enum"
        members = _members(raw_type, where, problems)
    return Attribute(
        key=key,
        type=type_,
        members=members,
        brief=_text(item, "brief", where, problems),
        note=_text(item, "note", where, problems, required=upstream),
        examples=_examples(item, type_, members, where, problems),
        stability=_stability(item, where, problems),
        source=rel,
        upstream=upstream,
        deprecated=_deprecated(item, where, problems) if upstream else "",
    )


def _requirement(raw: Any, where: str, problems: Problems) -> tuple[str, str]:
    if raw is None:
        return "recommended", ""
    if isinstance(raw, str):
        if raw not in REQUIREMENT_LEVELS:
            problems.add(
                where, f"requirement_level '{raw}' is not one of {', '.join(REQUIREMENT_LEVELS)}"
            )
        return raw, ""
    if isinstance(raw, Mapping) and len(raw) == 1:
        ((level, condition),) = raw.items()
        if level in CONDITIONAL_LEVELS and isinstance(condition, str) and condition.strip():
            return str(level), condition.strip()
    problems.add(
        where,
        "requirement_level must be required, recommended, opt_in, "
        "or {conditionally_required: <condition>} / {recommended: <condition>}",
    )
    return "recommended", ""


def _refs(
    item: Mapping[str, Any], where: str, problems: Problems, required: bool = False
) -> tuple[AttributeRef, ...]:
    raw = item.get("attributes")
    if raw is None:
        if required:
            problems.add(where, "missing 'attributes'")
        return ()
    if not isinstance(raw, list):
        problems.add(where, "'attributes' must be a list of refs")
        return ()
    refs: list[AttributeRef] = []
    for index, entry in enumerate(raw):
        entry_where = f"{where}, attributes[{index}]"
        if not isinstance(entry, Mapping):
            problems.add(entry_where, "must be a mapping with 'ref' or 'ref_group'")
            continue
        _unknown_fields(entry, REF_FIELDS, entry_where, problems)
        ref, ref_group = entry.get("ref"), entry.get("ref_group")
        if (ref is None) == (ref_group is None):
            problems.add(entry_where, "needs exactly one of 'ref' and 'ref_group'")
            continue
        if not isinstance(ref if ref is not None else ref_group, str):
            problems.add(entry_where, "'ref' / 'ref_group' must be a string")
            continue
        if ref_group is not None and "requirement_level" in entry:
            problems.add(entry_where, "a 'ref_group' entry cannot set 'requirement_level'")
        if ref is not None and "requirement_level" not in entry:
            problems.add(entry_where, f"ref '{ref}' needs a 'requirement_level'")
        level, condition = _requirement(entry.get("requirement_level"), entry_where, problems)
        note = entry.get("note")
        refs.append(
            AttributeRef(
                ref=ref,
                ref_group=ref_group,
                level=level,
                condition=condition,
                note=note.strip() if isinstance(note, str) else "",
            )
        )
    return tuple(refs)


def _load_manifest(root: Path, registry: Registry, problems: Problems) -> None:
    data = _read_yaml(root / MANIFEST_PATH, MANIFEST_PATH, problems)
    if data is None:
        return
    if not isinstance(data, Mapping):
        problems.add(MANIFEST_PATH, "must be a mapping")
        return
    where = MANIFEST_PATH
    registry.name = _text(data, "name", where, problems, required=False)
    registry.description = " ".join(_text(data, "description", where, problems).split())
    registry.schema_url = _text(data, "schema_url", where, problems)
    if registry.schema_url and not SCHEMA_URL_RE.match(registry.schema_url):
        problems.add(
            where, f"schema_url '{registry.schema_url}' must be a URL ending in the version (x.y.z)"
        )
    registry.stability = _stability(data, where, problems)
    dependencies = data.get("dependencies")
    if not isinstance(dependencies, list) or len(dependencies) != 1:
        problems.add(where, "'dependencies' must list exactly one registry: the GenAI conventions")
        if not isinstance(dependencies, list):
            return
    for index, dependency in enumerate(dependencies):
        dep_where = f"{where}: dependencies[{index}]"
        if not isinstance(dependency, Mapping):
            problems.add(dep_where, "must be a mapping")
            continue
        dep = Dependency(
            schema_url=_text(dependency, "schema_url", dep_where, problems),
            registry_path=_text(dependency, "registry_path", dep_where, problems),
        )
        if dep.schema_url and not SCHEMA_URL_RE.match(dep.schema_url):
            problems.add(dep_where, f"schema_url '{dep.schema_url}' must end in a version")
        registry.dependencies.append(dep)


def _load_model_file(path: Path, rel: str, registry: Registry, problems: Problems) -> None:
    data = _read_yaml(path, rel, problems)
    if data is None:
        problems.add(rel, "file is empty")
        return
    if not isinstance(data, Mapping):
        problems.add(rel, "must be a mapping")
        return
    if data.get("file_format") != FILE_FORMAT:
        problems.add(
            rel, f"must start with 'file_format: {FILE_FORMAT}' (found {data.get('file_format')!r})"
        )
    for section in data:
        if section != "file_format" and section not in SECTIONS:
            problems.add(
                rel, f"unknown top-level section '{section}' (known: {', '.join(SECTIONS)})"
            )

    for item in _items(data, "attributes", rel, problems):
        attribute = _attribute(item, rel, problems, upstream=False)
        if attribute is not None:
            registry.attributes.append(attribute)

    for item in _items(data, "attribute_groups", rel, problems):
        group_id = _text(item, "id", f"{rel}: attribute group", problems)
        if not group_id:
            continue
        where = f"{rel}: attribute group '{group_id}'"
        _check_name(group_id, "attribute group id", where, problems, ours=True)
        _unknown_fields(item, GROUP_FIELDS, where, problems)
        visibility = item.get("visibility", "public")
        if visibility not in ("internal", "public"):
            problems.add(where, "visibility must be 'internal' or 'public'")
        if visibility == "internal":
            for name in ("brief", "note", "stability"):
                if name in item:
                    problems.add(where, f"an internal attribute group has no '{name}'")
            brief = note = ""
        else:
            brief = _text(item, "brief", where, problems)
            note = _text(item, "note", where, problems, required=False)
            _stability(item, where, problems)
        registry.groups.append(
            AttributeGroup(
                id=group_id,
                brief=brief,
                note=note,
                attributes=_refs(item, where, problems, required=True),
                source=rel,
            )
        )

    for item in _items(data, "spans", rel, problems):
        span_type = _text(item, "type", f"{rel}: span", problems)
        if not span_type:
            continue
        where = f"{rel}: span '{span_type}'"
        _check_name(span_type, "span type", where, problems, ours=True)
        _unknown_fields(item, SPAN_FIELDS, where, problems)
        kind = _text(item, "kind", where, problems)
        if kind and kind not in SPAN_KINDS:
            problems.add(where, f"kind '{kind}' is not one of {', '.join(SPAN_KINDS)}")
        name = item.get("name")
        name_note = ""
        if not isinstance(name, Mapping) or not isinstance(name.get("note"), str):
            problems.add(where, "'name' must be a mapping with a 'note' describing the span name")
        else:
            name_note = name["note"].strip()
        registry.spans.append(
            Span(
                type=span_type,
                kind=kind,
                name_note=name_note,
                brief=_text(item, "brief", where, problems),
                note=_text(item, "note", where, problems, required=False),
                stability=_stability(item, where, problems),
                attributes=_refs(item, where, problems),
                source=rel,
            )
        )

    for section in ("span_refinements", "metric_refinements", "event_refinements"):
        for item in _items(data, section, rel, problems):
            refinement_id = _text(item, "id", f"{rel}: {section}", problems)
            if not refinement_id:
                continue
            where = f"{rel}: {section[:-1].replace('_', ' ')} '{refinement_id}'"
            _check_name(refinement_id, "refinement id", where, problems, ours=True)
            _unknown_fields(item, REFINEMENT_FIELDS, where, problems)
            registry.refinements.append(
                Refinement(
                    section=section,
                    id=refinement_id,
                    ref=_text(item, "ref", where, problems),
                    brief=_text(item, "brief", where, problems),
                    note=_text(item, "note", where, problems, required=False),
                    stability=_stability(item, where, problems),
                    attributes=_refs(item, where, problems),
                    source=rel,
                )
            )

    for item in _items(data, "metrics", rel, problems):
        metric = _metric(item, rel, problems, upstream=False)
        if metric is not None:
            registry.metrics.append(metric)

    for item in _items(data, "events", rel, problems):
        event = _event(item, rel, problems, upstream=False)
        if event is not None:
            registry.events.append(event)


def _metric(item: Mapping[str, Any], rel: str, problems: Problems, upstream: bool) -> Metric | None:
    name = _text(item, "name", f"{rel}: metric", problems)
    if not name:
        return None
    where = f"{rel}: metric '{name}'"
    _check_name(name, "metric name", where, problems, ours=not upstream)
    _unknown_fields(item, UPSTREAM_METRIC_FIELDS if upstream else METRIC_FIELDS, where, problems)
    instrument = _text(item, "instrument", where, problems)
    if instrument and instrument not in INSTRUMENTS:
        problems.add(where, f"instrument '{instrument}' is not one of {', '.join(INSTRUMENTS)}")
    unit = item.get("unit")
    if not isinstance(unit, str) or not unit:
        problems.add(
            where, "missing 'unit' (a UCUM unit such as 's' or an annotation such as '{call}')"
        )
        unit = ""
    buckets: tuple[float, ...] | None = None
    raw_buckets = item.get("buckets")
    if raw_buckets is not None:
        if (
            not isinstance(raw_buckets, list)
            or not raw_buckets
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in raw_buckets)
            or any(b >= c for b, c in itertools.pairwise(raw_buckets))
        ):
            problems.add(
                where, "'buckets' must be a non-empty, strictly increasing list of numbers"
            )
        else:
            buckets = tuple(raw_buckets)
        if instrument != "histogram":
            problems.add(where, "'buckets' only apply to histograms")
    return Metric(
        name=name,
        instrument=instrument,
        unit=unit,
        brief=_text(item, "brief", where, problems),
        note=_text(item, "note", where, problems, required=upstream),
        stability="" if upstream else _stability(item, where, problems),
        attributes=_refs(item, where, problems),
        buckets=buckets,
        source=rel,
        upstream=upstream,
        deprecated=_deprecated(item, where, problems) if upstream else "",
    )


def _event(item: Mapping[str, Any], rel: str, problems: Problems, upstream: bool) -> Event | None:
    name = _text(item, "name", f"{rel}: event", problems)
    if not name:
        return None
    where = f"{rel}: event '{name}'"
    _check_name(name, "event name", where, problems, ours=not upstream)
    _unknown_fields(item, UPSTREAM_EVENT_FIELDS if upstream else EVENT_FIELDS, where, problems)
    return Event(
        name=name,
        brief=_text(item, "brief", where, problems),
        note=_text(item, "note", where, problems, required=upstream),
        stability="" if upstream else _stability(item, where, problems),
        attributes=_refs(item, where, problems),
        source=rel,
        upstream=upstream,
    )


def _read_json(path: Path, rel: str, problems: Problems) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.add(rel, "file not found")
    except ValueError as error:
        problems.add(rel, f"not valid JSON: {error}")
    return None


def _load_source(data: Mapping[str, Any], registry: Registry, problems: Problems) -> None:
    where = f"{UPSTREAM_PATH}: source"
    raw = data.get("source")
    if not isinstance(raw, Mapping):
        problems.add(UPSTREAM_PATH, "missing 'source' (repository, commit, schema_url)")
        return
    _unknown_fields(raw, SOURCE_FIELDS, where, problems)
    source = UpstreamSource(
        repository=_text(raw, "repository", where, problems),
        commit=_text(raw, "commit", where, problems),
        schema_url=_text(raw, "schema_url", where, problems),
        read=_text(raw, "read", where, problems, required=False),
    )
    if source.commit and not COMMIT_RE.match(source.commit):
        problems.add(where, f"commit '{source.commit}' must be a full 40-hex commit hash")
    if source.schema_url and not SCHEMA_URL_RE.match(source.schema_url):
        problems.add(where, f"schema_url '{source.schema_url}' must end in a version")
    registry.upstream_source = source


def _load_upstream(root: Path, registry: Registry, problems: Problems) -> None:
    rel = UPSTREAM_PATH
    data = _read_json(root / rel, rel, problems)
    if data is None:
        return
    if not isinstance(data, Mapping):
        problems.add(rel, "must be a mapping")
        return
    for section in data:
        if section not in UPSTREAM_SECTIONS:
            problems.add(
                rel,
                f"unknown top-level section '{section}' (known: {', '.join(UPSTREAM_SECTIONS)})",
            )
    _load_source(data, registry, problems)
    for item in _items(data, "attributes", rel, problems):
        attribute = _attribute(item, rel, problems, upstream=True)
        if attribute is not None:
            registry.upstream_attributes.append(attribute)
    for item in _items(data, "spans", rel, problems):
        span_type = _text(item, "type", f"{rel}: span", problems)
        if not span_type:
            continue
        where = f"{rel}: span '{span_type}'"
        _check_name(span_type, "span type", where, problems, ours=False)
        _unknown_fields(item, UPSTREAM_SPAN_FIELDS, where, problems)
        kind = _text(item, "kind", where, problems)
        if kind and kind not in SPAN_KINDS:
            problems.add(where, f"kind '{kind}' is not one of {', '.join(SPAN_KINDS)}")
        registry.upstream_spans.append(
            UpstreamSpan(
                type=span_type,
                kind=kind,
                brief=_text(item, "brief", where, problems),
                note=_text(item, "note", where, problems),
                attributes=_refs(item, where, problems, required=True),
            )
        )
    for item in _items(data, "metrics", rel, problems):
        metric = _metric(item, rel, problems, upstream=True)
        if metric is not None:
            registry.upstream_metrics.append(metric)
    for item in _items(data, "events", rel, problems):
        event = _event(item, rel, problems, upstream=True)
        if event is not None:
            registry.upstream_events.append(event)


def _check_unique(items: Sequence[tuple[str, str]], what: str, problems: Problems) -> None:
    """`items` are (name, source file) pairs; report names defined more than once."""
    seen: dict[str, str] = {}
    for name, source in items:
        if name in seen:
            problems.add(source, f"{what} '{name}' is already defined in {seen[name]}")
        else:
            seen[name] = source


def _check_namespaces(registry: Registry, problems: Problems) -> None:
    sources = {a.key: a.source for a in registry.all_attributes()}
    for key, source in sorted(sources.items()):
        parts = key.split(".")
        for end in range(1, len(parts)):
            prefix = ".".join(parts[:end])
            if prefix in sources:
                problems.add(
                    source,
                    f"attribute '{key}' lies inside the namespace of attribute '{prefix}' "
                    f"(defined in {sources[prefix]}); a key cannot also be a namespace",
                )


def _check_refs(registry: Registry, problems: Problems) -> None:
    keys = {a.key for a in registry.all_attributes()}
    deprecated = {a.key: a.deprecated for a in registry.upstream_attributes if a.deprecated}
    groups = {g.id: g for g in registry.groups}

    def check(refs: Sequence[AttributeRef], where: str) -> None:
        for ref in refs:
            if ref.ref is not None and ref.ref not in keys:
                problems.add(
                    where,
                    f"ref '{ref.ref}' is not an attribute of the registry or of {UPSTREAM_PATH}",
                )
            if ref.ref in deprecated:
                problems.add(
                    where, f"ref '{ref.ref}' is deprecated upstream: {deprecated[ref.ref]}"
                )
            if ref.ref_group is not None and ref.ref_group not in groups:
                problems.add(
                    where, f"ref_group '{ref.ref_group}' is not an attribute group of the registry"
                )

    def check_duplicates(refs: Sequence[AttributeRef], where: str) -> None:
        seen: set[str] = set()
        for ref in registry.expand(refs):
            if ref.ref in seen:
                problems.add(where, f"attribute '{ref.ref}' is referenced more than once")
            seen.add(ref.ref or "")

    for group in registry.groups:
        where = f"{group.source}: attribute group '{group.id}'"
        check(group.attributes, where)
        if _group_cycle(group.id, groups, ()):
            problems.add(where, "ref_group cycle")
    for span in registry.spans:
        where = f"{span.source}: span '{span.type}'"
        check(span.attributes, where)
        check_duplicates(span.attributes, where)
    for metric in registry.metrics:
        where = f"{metric.source}: metric '{metric.name}'"
        check(metric.attributes, where)
        check_duplicates(metric.attributes, where)
    for event in registry.events:
        where = f"{event.source}: event '{event.name}'"
        check(event.attributes, where)
        check_duplicates(event.attributes, where)

    upstream_keys = {a.key for a in registry.upstream_attributes}
    for upstream in [
        *registry.upstream_spans,
        *registry.upstream_metrics,
        *registry.upstream_events,
    ]:
        name = upstream.type if isinstance(upstream, UpstreamSpan) else upstream.name
        for ref in upstream.attributes:
            if ref.ref is not None and ref.ref not in upstream_keys:
                problems.add(
                    UPSTREAM_PATH, f"'{name}': ref '{ref.ref}' is not listed in attributes"
                )

    targets = {
        "span_refinements": {s.type for s in registry.spans}
        | {s.type for s in registry.upstream_spans},
        "metric_refinements": {m.name for m in registry.metrics}
        | {m.name for m in registry.upstream_metrics if not m.deprecated},
        "event_refinements": {e.name for e in registry.events + registry.upstream_events},
    }
    for refinement in registry.refinements:
        where = (
            f"{refinement.source}: {refinement.section[:-1].replace('_', ' ')} '{refinement.id}'"
        )
        check(refinement.attributes, where)
        check_duplicates(refinement.attributes, where)
        if refinement.ref and refinement.ref not in targets[refinement.section]:
            problems.add(
                where,
                f"ref '{refinement.ref}' is not a {refinement.section.split('_')[0]} "
                "of the registry "
                f"or of the dependency ({UPSTREAM_PATH}; deprecated signals excluded)",
            )


def _check_dependency(registry: Registry, problems: Problems) -> None:
    """The manifest's dependency and the snapshot must describe one upstream version."""
    source = registry.upstream_source
    for dependency in registry.dependencies:
        if source.schema_url and dependency.schema_url != source.schema_url:
            problems.add(
                MANIFEST_PATH,
                f"dependency schema_url '{dependency.schema_url}' differs from the snapshot's "
                f"'{source.schema_url}' ({UPSTREAM_PATH}): they must name one version",
            )
        if source.commit and source.commit not in dependency.registry_path:
            problems.add(
                MANIFEST_PATH,
                f"dependency registry_path '{dependency.registry_path}' is not pinned to the "
                f"snapshot's commit {source.commit}",
            )


def _group_cycle(
    group_id: str, groups: Mapping[str, AttributeGroup], path: tuple[str, ...]
) -> bool:
    if group_id in path:
        return True
    group = groups.get(group_id)
    if group is None:
        return False
    return any(
        _group_cycle(ref.ref_group, groups, (*path, group_id))
        for ref in group.attributes
        if ref.ref_group is not None
    )


def _check_python_names(registry: Registry, problems: Problems) -> None:
    names: list[tuple[str, str]] = []
    for attribute in registry.all_attributes():
        names.append((attribute.constant, f"{attribute.source} (attribute '{attribute.key}')"))
        if attribute.type == "enum":
            names.append(
                (attribute.values_class, f"{attribute.source} (attribute '{attribute.key}')")
            )
            member_names: set[str] = set()
            for member in attribute.members:
                where = f"{attribute.source}: attribute '{attribute.key}', member '{member.id}'"
                name = member_constant(member.id)
                if not name.isidentifier():
                    problems.add(where, f"member id gives the invalid Python name '{name}'")
                elif name in member_names:
                    problems.add(where, f"member id gives the Python name '{name}' twice")
                member_names.add(name)
    for metric in registry.metrics + registry.upstream_metrics:
        names.append((metric.constant, f"{metric.source} (metric '{metric.name}')"))
    for event in registry.events + registry.upstream_events:
        names.append((event.constant, f"{event.source} (event '{event.name}')"))
    names.extend(
        (name, "generated module")
        for name in (
            "METRIC_UNITS",
            "METRIC_BUCKETS",
            "Final",
            "UPSTREAM_SCHEMA_URL",
            "UPSTREAM_COMMIT",
        )
    )
    seen: dict[str, str] = {}
    for name, origin in names:
        if not name.isidentifier() or keyword.iskeyword(name):
            problems.add(origin, f"gives the invalid Python name '{name}'")
        elif name in seen:
            problems.add(origin, f"gives the Python name '{name}', already used by {seen[name]}")
        else:
            seen[name] = origin


def load(root: Path = ROOT) -> tuple[Registry, list[str]]:
    """Read and validate the registry under `root`; returns it with the problems found."""
    registry = Registry()
    problems = Problems()
    _load_manifest(root, registry, problems)
    files = weaver_registry_files(root)
    if not any(path.parent == root / MODEL_DIR for path in files):
        problems.add(MODEL_DIR, "no *.yaml files")
    for path in files:
        rel = path.relative_to(root).as_posix()
        if path.parent != root / MODEL_DIR:
            problems.add(
                rel,
                f"Weaver loads every YAML file under {REGISTRY_ROOT}/ as part of the registry: "
                f"definitions belong in {MODEL_DIR}/, anything else must not be YAML",
            )
        _load_model_file(path, rel, registry, problems)
    _load_upstream(root, registry, problems)

    _check_unique([(a.key, a.source) for a in registry.all_attributes()], "attribute", problems)
    _check_unique([(g.id, g.source) for g in registry.groups], "attribute group", problems)
    _check_unique([(s.type, s.source) for s in registry.spans], "span type", problems)
    _check_unique([(s.type, UPSTREAM_PATH) for s in registry.upstream_spans], "span type", problems)
    _check_unique([(r.id, r.source) for r in registry.refinements], "refinement", problems)
    _check_unique(
        [(m.name, m.source) for m in registry.metrics + registry.upstream_metrics],
        "metric",
        problems,
    )
    _check_unique(
        [(e.name, e.source) for e in registry.events + registry.upstream_events], "event", problems
    )
    _check_namespaces(registry, problems)
    _check_refs(registry, problems)
    _check_dependency(registry, problems)
    _check_python_names(registry, problems)
    return registry, problems.messages


def weaver_registry_files(root: Path) -> list[Path]:
    """The files `weaver registry check -r semconv` loads: every *.yaml / *.yml below the
    registry root, recursively, skipping hidden entries and the manifest."""
    found: list[Path] = []
    base = root / REGISTRY_ROOT
    for path in sorted(base.rglob("*")):
        parts = path.relative_to(base).parts
        if any(part.startswith(".") for part in parts) or not path.is_file():
            continue
        if path.suffix in (".yaml", ".yml") and path.name not in WEAVER_SKIPPED_FILES:
            found.append(path)
    return found


# -- Python rendering -------------------------------------------------------------------------


def _py_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _py_doc(text: str, indent: str) -> list[str]:
    """A docstring for the line above, wrapped to the line length."""
    flat = " ".join(text.split())
    flat = flat.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if flat.endswith('"'):
        flat = flat[:-1] + '\\"'
    if len(indent) + len(flat) + 6 <= LINE_LENGTH:
        return [f'{indent}"""{flat}"""']
    width = LINE_LENGTH - len(indent) - 3
    lines = textwrap.wrap(flat, width=width, break_long_words=False, break_on_hyphens=False)
    return [f'{indent}"""{lines[0]}', *(f"{indent}{line}" for line in lines[1:]), f'{indent}"""']


def _py_assign(name: str, value: str, indent: str = "", annotation: str = "Final") -> list[str]:
    line = f"{indent}{name}: {annotation} = {value}"
    if len(line) <= LINE_LENGTH:
        return [line]
    return [f"{indent}{name}: {annotation} = (", f"{indent}    {value}", f"{indent})"]


def _py_number(value: float) -> str:
    return repr(value)


def _py_attributes(attributes: Sequence[Attribute]) -> list[str]:
    lines: list[str] = []
    current = None
    for attribute in attributes:
        group = namespace(attribute.key)
        if group != current:
            current = group
            lines += ["", f"# {group}"]
        lines += _py_assign(attribute.constant, _py_str(attribute.key))
        doc = attribute.brief
        if attribute.type == "enum":
            doc += f" Values: `{attribute.values_class}`."
        lines += _py_doc(f"{doc} Type: {attribute.type_label}.", "")
    return lines


def _py_enum_classes(attributes: Sequence[Attribute]) -> list[str]:
    lines: list[str] = []
    for attribute in attributes:
        if attribute.type != "enum":
            continue
        lines += ["", "", f"class {attribute.values_class}:"]
        lines += _py_doc(f"Values of `{attribute.key}`.", "    ")
        for member in attribute.members:
            value = _py_str(member.value) if isinstance(member.value, str) else str(member.value)
            lines.append("")
            lines += _py_assign(member_constant(member.id), value, "    ")
            lines += _py_doc(member.brief, "    ")
    return lines


def render_python(registry: Registry) -> str:
    ours = _sorted_attributes(registry.attributes)
    upstream = sorted(registry.upstream_attributes, key=lambda a: a.key)
    metrics = sorted(registry.metrics, key=lambda m: m.name)
    upstream_metrics = sorted(registry.upstream_metrics, key=lambda m: m.name)
    events = sorted(registry.events, key=lambda e: e.name)
    upstream_events = sorted(registry.upstream_events, key=lambda e: e.name)

    lines = [
        "# GENERATED FILE - DO NOT EDIT.",
        f"# Generated by scripts/semconv_gen.py from {MODEL_DIR}/*.yaml and {UPSTREAM_PATH}.",
        f"# To change it, edit the YAML and run: {REGENERATE}",
        '"""Semantic conventions of otel-agents: attribute keys, enum values, metric and event '
        "names.",
        "",
        "This module is generated from the registry in `semconv/` (see "
        "`semconv/docs/attributes.md`",
        f"for the reference). Do not edit it by hand; run `{REGENERATE}`.",
        "",
        "Our attributes drop the `otel_agents.` prefix (`otel_agents.handoff.from` ->",
        "`HANDOFF_FROM`); upstream attributes keep their full key (`gen_ai.tool.call.id` ->",
        "`GEN_AI_TOOL_CALL_ID`). Metric names start with `METRIC_`, event names with `EVENT_`, and",
        "enum attributes have a `...Values` class.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Final",
        "",
        f"# -- otel_agents attributes ({MODEL_DIR}) " + "-" * 40,
    ]
    lines += _py_attributes(ours)
    lines += _py_enum_classes(ours)
    lines += ["", "", f"# -- upstream attributes ({UPSTREAM_PATH}) " + "-" * 30]
    lines += _py_attributes(upstream)
    lines += _py_enum_classes(upstream)
    lines += ["", "", "# -- metrics " + "-" * 80, ""]
    for metric in [*metrics, *upstream_metrics]:
        lines += _py_assign(metric.constant, _py_str(metric.name))
        deprecated = f" Deprecated upstream: {metric.deprecated}" if metric.deprecated else ""
        lines += _py_doc(
            f"{metric.brief} {metric.instrument.capitalize()}, unit `{metric.unit}`.{deprecated}",
            "",
        )
    lines += ["", "METRIC_UNITS: Final[dict[str, str]] = {"]
    for metric in [*metrics, *upstream_metrics]:
        lines.append(f"    {metric.constant}: {_py_str(metric.unit)},")
    lines.append("}")
    lines += _py_doc("Unit of every metric above, by metric name.", "")
    lines += ["", "METRIC_BUCKETS: Final[dict[str, tuple[float, ...]]] = {"]
    for metric in [*metrics, *upstream_metrics]:
        if metric.buckets is None:
            continue
        numbers = ", ".join(_py_number(b) for b in metric.buckets) + ","
        lines.append(f"    {metric.constant}: (")
        lines += [f"        {chunk}" for chunk in textwrap.wrap(numbers, width=LINE_LENGTH - 8)]
        lines.append("    ),")
    lines.append("}")
    lines += _py_doc(
        "Explicit histogram bucket boundaries the conventions give, by metric name.", ""
    )
    lines += ["", "", "# -- events " + "-" * 81, ""]
    for event in [*events, *upstream_events]:
        lines += _py_assign(event.constant, _py_str(event.name))
        lines += _py_doc(event.brief, "")
    source = registry.upstream_source
    lines += ["", "", "# -- the upstream conventions we follow " + "-" * 53, ""]
    lines += _py_assign("UPSTREAM_SCHEMA_URL", _py_str(source.schema_url))
    lines += _py_doc("Schema URL of the GenAI conventions (the manifest's dependency).", "")
    lines += _py_assign("UPSTREAM_COMMIT", _py_str(source.commit))
    lines += _py_doc(f"Commit of {source.repository} the snapshot was taken from.", "")
    return "\n".join(lines) + "\n"


def _sorted_attributes(attributes: Sequence[Attribute]) -> list[Attribute]:
    """Namespaces alphabetically; inside a namespace, in the order of the YAML."""
    order = {a.key: index for index, a in enumerate(attributes)}
    return sorted(attributes, key=lambda a: (namespace(a.key), order[a.key]))


# -- Markdown rendering -----------------------------------------------------------------------


def _md_cell(text: str) -> str:
    """Text made safe for one table cell: paragraphs joined with <br>, pipes escaped."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    rendered: list[str] = []
    for paragraph in paragraphs:
        lines = [re.sub(r"^>\s?", "", line.strip()) for line in paragraph.splitlines()]
        joined = " ".join(line for line in lines if line)
        joined = joined.replace("[!WARNING]", "**Warning:**").replace("[!NOTE]", "**Note:**")
        if joined:
            rendered.append(joined)
    return "<br><br>".join(rendered).replace("|", "\\|")


def _md_value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", "\\n")
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}".replace("|", "\\|")


def _md_examples(attribute: Attribute) -> str:
    return "; ".join(_md_value(example) for example in attribute.examples)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _anchor(title: str) -> str:
    """GitHub's heading anchor for `title`."""
    slug = title.strip().lower()
    slug = re.sub(r"[^\w\- ]", "", slug)
    return "#" + slug.replace(" ", "-")


@dataclass(frozen=True)
class _Use:
    signal: str
    requirement: str


def _usage(registry: Registry) -> dict[str, list[_Use]]:
    """Where each attribute is used, with its requirement level there."""
    uses: dict[str, list[_Use]] = {}

    def add(refs: Sequence[AttributeRef], signal: str) -> None:
        for ref in registry.expand(refs):
            uses.setdefault(ref.ref or "", []).append(_Use(signal, ref.requirement))

    for span in sorted(registry.spans, key=lambda s: s.type):
        add(span.attributes, f"`{span.type}` span")
    for refinement in sorted(registry.refinements, key=lambda r: r.ref):
        add(refinement.attributes, f"`{refinement.ref}` {refinement.section.split('_')[0]}")
    for event in sorted(registry.events, key=lambda e: e.name):
        add(event.attributes, f"`{event.name}` event")
    for metric in sorted(registry.metrics, key=lambda m: m.name):
        add(metric.attributes, f"`{metric.name}` metric")
    return uses


def _md_refs_table(registry: Registry, refs: Sequence[AttributeRef]) -> list[str]:
    rows: list[list[str]] = []
    for ref in registry.expand(refs):
        attribute = registry.attribute(ref.ref or "")
        if attribute is None:
            continue
        rows.append(
            [
                f"`{attribute.key}`",
                attribute.type_label,
                _md_cell(ref.requirement),
                _md_cell(ref.note or attribute.brief),
            ]
        )
    if not rows:
        return ["No attributes."]
    return _md_table(["Attribute", "Type", "Requirement level", "Brief / note"], rows)


def _md_members(attribute: Attribute) -> list[str]:
    rows = [
        [_md_value(m.value), f"`{member_constant(m.id)}`", _md_cell(m.brief), m.stability]
        for m in attribute.members
    ]
    return [
        "",
        f"`{attribute.key}` values (`{attribute.values_class}`):",
        "",
        *_md_table(["Value", "Python", "Brief", "Stability"], rows),
    ]


def render_markdown(registry: Registry) -> str:
    uses = _usage(registry)
    ours = _sorted_attributes(registry.attributes)
    namespaces: dict[str, list[Attribute]] = {}
    for attribute in ours:
        namespaces.setdefault(namespace(attribute.key), []).append(attribute)

    out: list[str] = [
        "<!-- GENERATED FILE - DO NOT EDIT. Generated by scripts/semconv_gen.py from "
        f"{MODEL_DIR}/ and "
        f"{UPSTREAM_PATH}; run `{REGENERATE}`. -->",
        "",
        "# otel-agents semantic conventions",
        "",
        registry.description,
        "",
        f"- Registry: `{MODEL_DIR}/` (OpenTelemetry Weaver `{FILE_FORMAT}` files), manifest "
        f"`{MANIFEST_PATH}`.",
        f"- Schema URL: `{registry.schema_url}`; stability: {registry.stability}.",
    ]
    for dependency in registry.dependencies:
        out.append(
            f"- Depends on: `{dependency.registry_path}` (schema URL `{dependency.schema_url}`)."
        )
    source = registry.upstream_source
    out.append(
        f"- Upstream snapshot: `{UPSTREAM_PATH}`, taken from {source.repository} at commit "
        f"`{source.commit}` (read {source.read})."
    )
    out += [
        "- Python constants: `otel_agents/semconv.py`, e.g. "
        "`from otel_agents import semconv as sc`, "
        "then `sc.RUN_ID`.",
        "- Requirement levels follow the OpenTelemetry conventions: Required, Recommended, "
        "Conditionally Required, Opt-In (opt-in attributes carry content and are recorded only "
        "when content capture is enabled).",
        "",
        "## Contents",
        "",
        "- [Attributes](#attributes)",
    ]
    out += [f"  - [`{ns}`]({_anchor(f'{ns} attributes')})" for ns in namespaces]
    out += [
        "- [Spans](#spans)",
        "- [Additions to upstream spans](#additions-to-upstream-spans)",
        "- [Events](#events)",
        "- [Metrics](#metrics)",
        "- [Upstream names we emit](#upstream-names-we-emit)",
        "- [Upstream names we no longer emit](#upstream-names-we-no-longer-emit)",
        "- [Upstream mapping notes](#upstream-mapping-notes)",
        "",
        "## Attributes",
    ]
    for ns, attributes in namespaces.items():
        out += ["", f"### `{ns}` attributes", ""]
        rows = []
        for attribute in attributes:
            parts = [attribute.note] if attribute.note else []
            used = uses.get(attribute.key, [])
            if used:
                parts.append(
                    "Used on: " + "; ".join(f"{u.signal} ({u.requirement})" for u in used) + "."
                )
            rows.append(
                [
                    f"`{attribute.key}`<br>`sc.{attribute.constant}`",
                    attribute.type_label,
                    _md_cell(attribute.brief),
                    _md_examples(attribute),
                    _md_cell("\n\n".join(parts)),
                    attribute.stability,
                ]
            )
        out += _md_table(
            ["Attribute", "Type", "Brief", "Examples", "Requirement / notes", "Stability"], rows
        )
        for attribute in attributes:
            if attribute.type == "enum":
                out += _md_members(attribute)

    out += ["", "## Spans"]
    for span in sorted(registry.spans, key=lambda s: s.type):
        out += [
            "",
            f"### `{span.type}` span",
            "",
            span.brief,
            "",
            f"- Span kind: `{span.kind.upper()}`",
            f"- {' '.join(span.name_note.split())}",
            f"- Stability: {span.stability}",
            f"- Defined in: `{span.source}`",
        ]
        if span.note:
            out += ["", span.note]
        out += ["", *_md_refs_table(registry, span.attributes)]

    out += [
        "",
        "## Additions to upstream spans",
        "",
        "Attributes otel-agents adds to spans defined by the GenAI conventions (Weaver "
        "`span_refinements`).",
    ]
    for refinement in sorted(registry.refinements, key=lambda r: r.ref):
        out += [
            "",
            f"### `{refinement.ref}` (refinement `{refinement.id}`)",
            "",
            refinement.brief,
        ]
        if refinement.note:
            out += ["", refinement.note]
        out += ["", *_md_refs_table(registry, refinement.attributes)]

    out += ["", "## Events"]
    for event in sorted(registry.events, key=lambda e: e.name):
        out += [
            "",
            f"### `{event.name}` event",
            "",
            event.brief,
            "",
            f"- Python: `sc.{event.constant}`",
        ]
        out += [f"- Stability: {event.stability}", f"- Defined in: `{event.source}`"]
        if event.note:
            out += ["", event.note]
        out += ["", *_md_refs_table(registry, event.attributes)]

    out += ["", "## Metrics", ""]
    metrics = sorted(registry.metrics, key=lambda m: m.name)
    out += _md_table(
        ["Metric", "Instrument", "Unit", "Brief", "Stability"],
        [
            [
                f"[`{m.name}`]({_anchor(f'{m.name} metric')})<br>`sc.{m.constant}`",
                m.instrument,
                f"`{m.unit}`",
                _md_cell(m.brief),
                m.stability,
            ]
            for m in metrics
        ],
    )
    for metric in metrics:
        out += ["", f"### `{metric.name}` metric", "", metric.brief]
        if metric.note:
            out += ["", metric.note]
        out += ["", *_md_refs_table(registry, metric.attributes)]

    out += [
        "",
        "## Upstream names we emit",
        "",
        f"Listed in `{UPSTREAM_PATH}` (not part of our registry; the upstream definitions are "
        "authoritative; a test fails when we emit a `gen_ai.*` name the snapshot lacks or "
        "deprecates). Enum members are limited to the values otel-agents sets.",
        "",
        "### Upstream attributes",
        "",
    ]
    upstream = sorted(registry.upstream_attributes, key=lambda a: a.key)
    out += _md_table(
        ["Attribute", "Type", "Brief", "Examples", "Defined in / notes", "Stability"],
        [
            [
                f"`{a.key}`<br>`sc.{a.constant}`",
                a.type_label,
                _md_cell(a.brief),
                _md_examples(a),
                _md_cell(a.note),
                a.stability,
            ]
            for a in upstream
            if not a.deprecated
        ],
    )
    for attribute in upstream:
        if attribute.type == "enum":
            out += _md_members(attribute)
    out += ["", "### Upstream metrics", ""]
    out += _md_table(
        ["Metric", "Instrument", "Unit", "Brief", "Bucket boundaries", "Defined in / notes"],
        [
            [
                f"`{m.name}`<br>`sc.{m.constant}`",
                m.instrument,
                f"`{m.unit}`",
                _md_cell(m.brief),
                ", ".join(_py_number(b) for b in m.buckets) if m.buckets else "",
                _md_cell(m.note),
            ]
            for m in sorted(registry.upstream_metrics, key=lambda m: m.name)
            if not m.deprecated
        ],
    )
    out += ["", "### Upstream events", ""]
    out += _md_table(
        ["Event", "Brief", "Defined in / notes"],
        [
            [f"`{e.name}`<br>`sc.{e.constant}`", _md_cell(e.brief), _md_cell(e.note)]
            for e in sorted(registry.upstream_events, key=lambda e: e.name)
        ],
    )
    out += ["", "### Upstream span types", ""]
    out += _md_table(
        ["Span type", "Brief", "Defined in / notes"],
        [
            [f"`{s.type}`", _md_cell(s.brief), _md_cell(s.note)]
            for s in sorted(registry.upstream_spans, key=lambda s: s.type)
        ],
    )

    out += [
        "",
        "## Upstream names we no longer emit",
        "",
        "Deprecated or removed upstream; kept in the snapshot so that emitting them fails the "
        "tests. For dashboards built on them, see the README's migration note.",
        "",
    ]
    out += _md_table(
        ["Name", "Kind", "Replacement"],
        [[f"`{a.key}`", "attribute", _md_cell(a.deprecated)] for a in upstream if a.deprecated]
        + [
            [f"`{m.name}`", f"{m.instrument} metric", _md_cell(m.deprecated)]
            for m in sorted(registry.upstream_metrics, key=lambda m: m.name)
            if m.deprecated
        ],
    )
    out += [
        "",
        "## Upstream mapping notes",
        "",
        "Where our names overlap upstream proposals or existing conventions (from the notes "
        "above). We keep our own names until the upstream work is merged and released.",
        "",
    ]
    mapping_rows: list[list[str]] = []
    for name, kind, note in _mapping_sources(registry):
        if UPSTREAM_REFERENCE_RE.search(note):
            mapping_rows.append([f"`{name}`", kind, _md_cell(note)])
    out += _md_table(["Name", "Kind", "Relation to upstream"], mapping_rows)
    return "\n".join(out) + "\n"


def _mapping_sources(registry: Registry) -> Iterator[tuple[str, str, str]]:
    for attribute in _sorted_attributes(registry.attributes):
        yield attribute.key, "attribute", attribute.note
    for span in sorted(registry.spans, key=lambda s: s.type):
        yield span.type, "span", span.note
    for event in sorted(registry.events, key=lambda e: e.name):
        yield event.name, "event", event.note
    for metric in sorted(registry.metrics, key=lambda m: m.name):
        yield metric.name, "metric", metric.note


# -- command line -----------------------------------------------------------------------------


def generate(registry: Registry) -> dict[str, str]:
    """The generated files, by path relative to the repository root."""
    return {PYTHON_OUT: render_python(registry), MARKDOWN_OUT: render_markdown(registry)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Validate the semconv registry and generate otel_agents/semconv.py and "
        "semconv/docs/attributes.md from it."
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 and print a diff if a generated file is out of date",
    )
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="repository root (default: this repository)"
    )
    args = parser.parse_args(argv)
    root: Path = args.root

    registry, problems = load(root)
    if problems:
        print(f"semconv registry is invalid ({len(problems)} problem(s)):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1

    outputs = generate(registry)
    if args.check:
        stale: list[str] = []
        for rel, text in outputs.items():
            path = root / rel
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if current != text:
                stale.append(rel)
                sys.stdout.writelines(
                    difflib.unified_diff(
                        current.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        fromfile=f"{rel} (on disk)",
                        tofile=f"{rel} (generated)",
                    )
                )
        if stale:
            print(f"semconv: out of date: {', '.join(stale)}; run `{REGENERATE}`", file=sys.stderr)
            return 1
        print("semconv: registry is valid and the generated files are up to date")
        return 0

    for rel, text in outputs.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8", newline="\n")
            print(f"semconv: wrote {rel}")
        else:
            print(f"semconv: {rel} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
