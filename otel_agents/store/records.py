"""Spans as the store keeps them: plain rows with JSON attributes, events and links.

`SpanRow` is the one shape both sides use: the exporter builds it from an SDK
`ReadableSpan`, the reader from a database row. Content that the capture mode put into
an event (`otel_agents.content`, or the conventions' inference details event) instead of
an attribute is found by `SpanRow.content(key)` either way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from otel_agents import semconv as sc

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

_CONTENT_EVENTS = (sc.EVENT_CONTENT, sc.EVENT_GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS)
TOOL_SPAN_PREFIX = "execute_tool "
AGENT_SPAN_PREFIX = "invoke_agent "
APPROVAL_SPAN_PREFIX = "await_approval "
LLM_OPERATIONS = frozenset(
    {
        sc.GenAiOperationNameValues.CHAT,
        sc.GenAiOperationNameValues.TEXT_COMPLETION,
        sc.GenAiOperationNameValues.GENERATE_CONTENT,
        sc.GenAiOperationNameValues.EMBEDDINGS,
    }
)


@dataclass
class SpanRow:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    start_ns: int
    end_ns: int
    status: str  # unset | ok | error
    status_message: str | None
    attributes: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str | None = None
    open: bool = False  # started and not ended when last seen (end_ns: when it was seen)

    # -- what the span is ----------------------------------------------------------------

    @property
    def run_id(self) -> str | None:
        value = self.attributes.get(sc.RUN_ID)
        return value if isinstance(value, str) else None

    @property
    def operation(self) -> str | None:
        value = self.attributes.get(sc.GEN_AI_OPERATION_NAME)
        return value if isinstance(value, str) else None

    @property
    def is_tool(self) -> bool:
        return self.name.startswith(TOOL_SPAN_PREFIX) or (
            self.operation == sc.GenAiOperationNameValues.EXECUTE_TOOL and not self.is_mcp_rpc
        )

    @property
    def is_mcp_rpc(self) -> bool:
        """The MCP SDK's own span of a request, sent or served (`tools/call lookup`): the
        protocol exchange, not a tool execution (the MCP conventions give it the operation
        name `execute_tool` all the same)."""
        return self.kind in ("client", "server") and sc.MCP_METHOD_NAME in self.attributes

    @property
    def is_agent(self) -> bool:
        return self.operation == sc.GenAiOperationNameValues.INVOKE_AGENT or (
            self.name.startswith(AGENT_SPAN_PREFIX)
        )

    @property
    def is_run_root(self) -> bool:
        """The outermost agent of a run: the only span that carries the run totals."""
        return self.is_agent and sc.RUN_TOOL_CALLS in self.attributes

    @property
    def is_llm(self) -> bool:
        return self.operation in LLM_OPERATIONS

    @property
    def is_handoff(self) -> bool:
        return sc.HANDOFF_TO in self.attributes

    @property
    def is_approval(self) -> bool:
        return self.name.startswith(APPROVAL_SPAN_PREFIX) or sc.APPROVAL_STATUS in self.attributes

    @property
    def duration_ns(self) -> int:
        return max(self.end_ns - self.start_ns, 0)

    @property
    def service(self) -> str | None:
        value = self.resource.get("service.name")
        return value if isinstance(value, str) else None

    def get(self, key: str) -> Any:
        return self.attributes.get(key)

    def content(self, key: str) -> Any:
        """A content value, from the attribute or from a content event."""
        if key in self.attributes:
            return self.attributes[key]
        for event in self.events:
            if event.get("name") in _CONTENT_EVENTS:
                attributes = event.get("attributes") or {}
                if key in attributes:
                    return attributes[key]
        return None

    def events_named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("name") == name]

    # -- conversions ---------------------------------------------------------------------

    @classmethod
    def from_readable(
        cls, span: ReadableSpan, resources: dict[int, dict[str, Any]] | None = None
    ) -> SpanRow:
        """`resources` caches converted resources: spans of a process share one."""
        context = span.context
        parent = span.parent
        status = span.status
        resource = _resource(span, resources if resources is not None else {})
        scope = span.instrumentation_scope
        return cls(
            trace_id=format(context.trace_id, "032x") if context else "0" * 32,
            span_id=format(context.span_id, "016x") if context else "0" * 16,
            parent_span_id=format(parent.span_id, "016x") if parent is not None else None,
            name=span.name,
            kind=span.kind.name.lower(),
            start_ns=span.start_time or 0,
            end_ns=span.end_time or span.start_time or 0,
            status=status.status_code.name.lower(),  # unset | ok | error
            status_message=status.description,
            attributes=_span_attributes(span),
            events=[
                {"name": e.name, "time_ns": e.timestamp, "attributes": _plain(e.attributes)}
                for e in span.events
            ],
            links=[
                {
                    "trace_id": format(link.context.trace_id, "032x"),
                    "span_id": format(link.context.span_id, "016x"),
                    "attributes": _plain(link.attributes),
                }
                for link in span.links
            ],
            resource=resource,
            scope=scope.name if scope is not None else None,
        )

    @classmethod
    def from_db(cls, row: Mapping[str, Any], resource: Mapping[str, Any]) -> SpanRow:
        """From a `spans` row, or an `open_spans` row (which has `seen_ns`, no end)."""
        keys = row.keys() if hasattr(row, "keys") else row
        if "seen_ns" in keys:
            return cls(
                trace_id=row["trace_id"],
                span_id=row["span_id"],
                parent_span_id=row["parent_span_id"],
                name=row["name"],
                kind=row["kind"],
                start_ns=row["start_ns"],
                end_ns=row["seen_ns"],
                status="unset",
                status_message=None,
                attributes=json.loads(row["attributes"]),
                events=json.loads(row["events"]) if row["events"] else [],
                links=json.loads(row["links"]) if row["links"] else [],
                resource=dict(resource),
                scope=row["scope"],
                open=True,
            )
        return cls(
            trace_id=row["trace_id"],
            span_id=row["span_id"],
            parent_span_id=row["parent_span_id"],
            name=row["name"],
            kind=row["kind"],
            start_ns=row["start_ns"],
            end_ns=row["end_ns"],
            status=row["status"],
            status_message=row["status_message"],
            attributes=json.loads(row["attributes"]),
            events=json.loads(row["events"]) if row["events"] else [],
            links=json.loads(row["links"]) if row["links"] else [],
            resource=dict(resource),
            scope=row["scope"],
        )

    def db_values(self, resource_id: int | None) -> tuple[Any, ...]:
        """Values for `INSERT INTO spans (SPAN_COLUMNS)`."""
        return (
            self.trace_id,
            self.span_id,
            self.parent_span_id,
            self.run_id,
            self.name,
            self.kind,
            self.start_ns,
            self.end_ns,
            self.status,
            clean_text(self.status_message),
            dumps(self.attributes),
            dumps(self.events) if self.events else None,
            dumps(self.links) if self.links else None,
            resource_id,
            self.scope,
        )


SPAN_COLUMNS = (
    "trace_id, span_id, parent_span_id, run_id, name, kind, start_ns, end_ns, status,"
    " status_message, attributes, events, links, resource_id, scope"
)


def resource_digest(resource: Mapping[str, Any]) -> tuple[str, str]:
    """(digest, JSON) of a resource, so that each distinct resource is stored once."""
    text = dumps(resource, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32], text


# Built once: `json.dumps` with any non-default option builds a new encoder per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_SORTED_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def dumps(value: Any, *, sort_keys: bool = False) -> str:
    text = (_SORTED_ENCODER if sort_keys else _ENCODER).encode(value)
    return clean_text(text) or ""


def clean_text(text: str | None) -> str | None:
    """Text SQLite can store: lone surrogates (which UTF-8 cannot encode) become U+FFFD."""
    if text is None or text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _resource(span: ReadableSpan, cache: dict[int, dict[str, Any]]) -> dict[str, Any]:
    if span.resource is None:
        return {}
    key = id(span.resource)
    if key not in cache:
        cache[key] = _plain(span.resource.attributes)
    return cache[key]


def _span_attributes(span: ReadableSpan) -> dict[str, Any]:
    """`span.attributes` is a read-only proxy over the SDK's `BoundedAttributes`: copy
    what is under it (see `_plain`) rather than through the proxy."""
    return _plain(getattr(span, "_attributes", None) or span.attributes)


def _plain(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """Attribute values as JSON can hold them. (The SDK keeps sequences as tuples, which
    `json` writes as arrays already; only a copy is needed.)

    The SDK's `BoundedAttributes` is a Mapping in Python over a plain dict: copying that
    dict in C is several times cheaper than `dict(mapping)`, which looks each key up
    through Python. Any other mapping is copied as a mapping."""
    if not attributes:
        return {}
    inner = getattr(attributes, "_dict", None)
    if type(inner) is dict:
        return inner.copy()
    return dict(attributes)
