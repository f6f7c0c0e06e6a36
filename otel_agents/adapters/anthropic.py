"""Auto-instrumentation of the official `anthropic` SDK: the Messages API.

Every `messages.create` call, sync or async, with or without `stream=True`, and everything
built on it (`messages.stream()`, `messages.parse()`, `with_raw_response`,
`with_streaming_response`, `client.beta.messages`) becomes one `chat {model}` span through
the shared Stainless wrapper (`stainless.py`). This module only says how to read a request,
a `Message` and the stream events:

- thinking blocks are the reasoning behind the tool calls of the same message (source
  `thinking`); `tool_use` blocks are the tool calls the application is asked to run;
- `redacted_thinking` blocks are encrypted: they show in the captured output as a
  `reasoning` part whose content is `[redacted]` (with `"redacted": true`), and give no
  reasoning text to the decision path, which then falls back to the assistant's text;
- server tools (`server_tool_use`, `web_search_tool_result`, MCP tool blocks) run at
  Anthropic, not in the application: they are `server_tool_call` /
  `server_tool_call_response` parts, never tool calls waiting for an `execute_tool` span;
- usage follows the GenAI conventions: `gen_ai.usage.input_tokens` is Anthropic's
  `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`;
- `stop_reason` values (`end_turn`, `tool_use`, `max_tokens`, ...) are kept as they are.

The SDK's own span
------------------
`anthropic` 2.x traces itself: `SyncAPIClient.request` / `AsyncAPIClient.request` open an
`anthropic.messages.create` CLIENT span (`start_api_call_span`, looked up in
`anthropic._base_client`) whenever the client's tracing is on, which it is by default once
a TracerProvider is registered. With both, one call would give two spans. We keep ours, so
that Anthropic calls carry the same attributes, cost, content switch and decision path as
every other client, and switch the SDK's span off for the calls we record only:
`start_api_call_span` is wrapped, and while one of our Messages calls is current it returns
a non-recording span that carries *our* span's context instead of starting a new one.

- The SDK goes on exactly as with its own span: each HTTP attempt carries the trace context
  (`traceparent`) when the client's `propagation` setting says so, now naming our span; it
  records nothing on the non-recording span and never ends ours. When the SDK's tracing is
  off (`open_telemetry=False`, `ANTHROPIC_OPEN_TELEMETRY=false`), `request` never asks for a
  span and nothing changes: no native span, and no trace headers, as without otel-agents.
- The SDK's `http.request.resend_count` is covered by our `otel_agents.llm.attempts`
  (attempts = resends + 1), counted through `_attempt_request`.
- Endpoints we do not record (`models.list`, `messages.count_tokens`, batches, files, ...)
  keep the SDK's span untouched, and `unpatch()` restores the SDK's behaviour entirely.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any, ClassVar

import wrapt
from opentelemetry.trace import NonRecordingSpan, Span
from opentelemetry.util.types import AttributeValue

from otel_agents import semconv as sc
from otel_agents.adapters.fields import (
    Parameter,
    count,
    error_in_body,
    field_of,
    fields_of,
    integer,
    is_omitted,
    items,
    number,
    read_parameters,
    strings,
    text,
)
from otel_agents.adapters.stainless import StainlessClient, server_of
from otel_agents.core.inference import LLMRequest, LLMResponse, ToolCallRequest, current_call
from otel_agents.pricing import TokenUsage
from otel_agents.runtime import get_runtime, report_internal_error

PROVIDER = sc.GenAiProviderNameValues.ANTHROPIC
REDACTED_REASONING = "[redacted]"

# `client.beta.messages` posts to the same path; older SDKs spelled the beta flag into it.
MESSAGES_PATHS = ("/v1/messages", "/v1/messages?beta=true")

_NATIVE_SPAN_FACTORY = "start_api_call_span"


def _plain(value: Any, depth: int = 0) -> Any:
    """SDK models as plain data, without opaque `encrypted_*` fields (search results)."""
    if depth > 16:
        return None
    if not isinstance(value, Mapping):
        to_dict = getattr(value, "to_dict", None)
        if callable(to_dict):
            value = to_dict()
    if isinstance(value, Mapping):
        return {
            str(k): _plain(v, depth + 1)
            for k, v in value.items()
            if not str(k).startswith("encrypted_") and not is_omitted(v)
        }
    if isinstance(value, (list, tuple)):
        return [_plain(item, depth + 1) for item in value]
    return value


def _capturing_content() -> bool:
    """Content parts are only built when they will be recorded."""
    return get_runtime().settings.capture_content.enabled


# -- request extractors -----------------------------------------------------------------


def read_request(client: Any, body: Mapping[str, Any]) -> LLMRequest:
    """An `LLMRequest` from a Messages request body (as the SDK is about to send it)."""
    address, port = server_of(client)
    request = LLMRequest(
        provider=_provider(client),
        model=text(field_of(body, "model")),
        operation=sc.GenAiOperationNameValues.CHAT,
        stream=field_of(body, "stream") is True,
        server_address=address,
        server_port=port,
        parameters=request_parameters(body),
        conversation_id=_conversation_id(client),
    )
    if _capturing_content():
        request.input_messages = [input_message(m) for m in items(field_of(body, "messages"))]
        request.system_instructions = system_instructions(field_of(body, "system"))
        request.tool_definitions = tool_definitions(field_of(body, "tools"))
    return request


def _provider(client: Any) -> str:
    # The SDK names its platform clients itself: AnthropicBedrock is `aws.bedrock`, ...
    name = getattr(type(client), "_gen_ai_provider_name", None)
    return name if isinstance(name, str) and name else PROVIDER


def _conversation_id(client: Any) -> str | None:
    # The SDK's own option `open_telemetry={"conversation_id": ...}`, when the app set one.
    options = getattr(client, "open_telemetry", None)
    return text(options.get("conversation_id")) if isinstance(options, Mapping) else None


_PARAMETERS: tuple[Parameter, ...] = (
    ("max_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS, integer),
    ("top_k", sc.GEN_AI_REQUEST_TOP_K, integer),  # an int in the conventions (it was a double)
    ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE, number),
    ("top_p", sc.GEN_AI_REQUEST_TOP_P, number),
    ("stop_sequences", sc.GEN_AI_REQUEST_STOP_SEQUENCES, strings),
)


def request_parameters(body: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """The `gen_ai.request.*` attributes a Messages body sets."""
    parameters = read_parameters(body, _PARAMETERS)
    # `output_config.effort` (low/medium/high/max) is a reasoning level; a thinking budget
    # in tokens is not, so it is left out.
    output_config = field_of(body, "output_config")
    effort = text(field_of(output_config, "effort"))
    if effort:
        parameters[sc.GEN_AI_REQUEST_REASONING_LEVEL] = effort
    formats = (field_of(output_config, "format"), field_of(body, "output_format"))
    if any(field_of(f, "type") == "json_schema" for f in formats):
        parameters[sc.GEN_AI_OUTPUT_TYPE] = sc.GenAiOutputTypeValues.JSON
    return parameters


def system_instructions(system: Any) -> list[dict[str, Any]] | None:
    """`system` (a string or text blocks) as the conventions' system instruction parts."""
    if isinstance(system, str):
        return [{"type": "text", "content": system}]
    blocks = items(system)
    return [content_part(block) for block in blocks] if blocks else None


def tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    """`tools` as the conventions' tool definitions: client tools are functions, Anthropic's
    server tools (`web_search_20250305`, ...) keep their type and settings."""
    definitions: list[dict[str, Any]] = []
    for tool in items(tools):
        tool_type = text(field_of(tool, "type"))
        name = text(field_of(tool, "name")) or ""
        if tool_type in (None, "custom"):
            definition: dict[str, Any] = {"type": "function", "name": name}
            description = field_of(tool, "description")
            if description is not None:
                definition["description"] = description
            schema = field_of(tool, "input_schema")
            if schema is not None:
                definition["parameters"] = _plain(schema)
            definitions.append(definition)
        else:
            settings = _plain(tool)
            if not isinstance(settings, dict):
                settings = {}
            settings.pop("cache_control", None)
            definitions.append({**settings, "type": tool_type, "name": name})
    return definitions or None


def input_message(message: Any) -> dict[str, Any]:
    """One request message (`{"role", "content"}`) as a conventions' message."""
    role = text(field_of(message, "role")) or "user"
    return {"role": role, "parts": content_parts(field_of(message, "content"))}


def content_parts(content: Any) -> list[dict[str, Any]]:
    """Message content (a string or a list of blocks) as the conventions' parts."""
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    return [content_part(block) for block in items(content)]


def content_part(block: Any) -> dict[str, Any]:
    """One content block, of a request or a response, as a conventions' part."""
    kind = text(field_of(block, "type")) or "unknown"
    if kind == "text":
        return {"type": "text", "content": field_of(block, "text") or ""}
    if kind == "thinking":
        return {"type": "reasoning", "content": field_of(block, "thinking") or ""}
    if kind == "redacted_thinking":
        # The data is encrypted: record that reasoning happened, never the opaque blob.
        return {"type": "reasoning", "content": REDACTED_REASONING, "redacted": True}
    if kind == "tool_use":
        return {
            "type": "tool_call",
            "id": field_of(block, "id"),
            "name": field_of(block, "name") or "",
            "arguments": _plain(field_of(block, "input")),
        }
    if kind == "tool_result":
        return {
            "type": "tool_call_response",
            "id": field_of(block, "tool_use_id"),
            "response": _tool_result(field_of(block, "content")),
        }
    if kind in ("server_tool_use", "mcp_tool_use"):
        name = field_of(block, "name") or ""
        return {
            "type": "server_tool_call",
            "id": field_of(block, "id"),
            "name": name,
            "server_tool_call": {"type": name, "arguments": _plain(field_of(block, "input"))},
        }
    if kind.endswith("_tool_result"):  # web_search_tool_result, mcp_tool_result, ...
        return {
            "type": "server_tool_call_response",
            "id": field_of(block, "tool_use_id"),
            "server_tool_call_response": {
                "type": kind,
                "content": _plain(field_of(block, "content")),
            },
        }
    if kind in ("image", "document"):
        return _media_part(kind, field_of(block, "source"))
    if kind == "compaction":
        return {"type": "compaction", "content": field_of(block, "content")}
    return {"type": kind}


def _tool_result(content: Any) -> Any:
    if isinstance(content, str) or content is None:
        return content
    return content_parts(content)


def _media_part(modality: str, source: Any) -> dict[str, Any]:
    kind = field_of(source, "type")
    mime_type = field_of(source, "media_type")
    if kind == "base64":
        data = field_of(source, "data")
        return {"type": "blob", "modality": modality, "mime_type": mime_type, "content": data}
    if kind == "url":
        return {"type": "uri", "modality": modality, "uri": field_of(source, "url")}
    if kind == "file":
        return {"type": "file", "modality": modality, "file_id": field_of(source, "file_id")}
    if kind == "text":
        return {"type": "text", "content": field_of(source, "data") or ""}
    return {"type": modality}


# -- response extractors ----------------------------------------------------------------


def read_response(message: Any) -> LLMResponse:
    """An `LLMResponse` from a `Message` (or `BetaMessage`, `ParsedMessage`); an error
    object in a successful response's body makes it a failed call."""
    response = response_from(
        response_id=text(field_of(message, "id")),
        model=text(field_of(message, "model")),
        stop_reason=text(field_of(message, "stop_reason")),
        usage=token_usage(field_of(message, "usage")),
        blocks=items(field_of(message, "content")),
    )
    error = error_in_body(message)
    if error is not None:
        response.error_type, response.error_message = error
    return response


def token_usage(usage: Any) -> TokenUsage | None:
    """Anthropic usage in GenAI terms: input tokens include cache reads and writes."""
    if usage is None:
        return None
    cache_read = count(field_of(usage, "cache_read_input_tokens"))
    cache_write = count(field_of(usage, "cache_creation_input_tokens"))
    return TokenUsage(
        input_tokens=count(field_of(usage, "input_tokens")) + cache_read + cache_write,
        output_tokens=count(field_of(usage, "output_tokens")),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=count(
            field_of(field_of(usage, "output_tokens_details"), "thinking_tokens")
        ),
    )


def response_from(
    *,
    response_id: str | None,
    model: str | None,
    stop_reason: str | None,
    usage: TokenUsage | None,
    blocks: Iterable[Any],
) -> LLMResponse:
    """The response that a message's parts make, from a whole message or a stream."""
    blocks = list(blocks)
    thinking: list[str] = []
    texts: list[str] = []
    tool_calls: list[ToolCallRequest] = []
    for block in blocks:
        kind = field_of(block, "type")
        if kind == "text":
            texts.append(text(field_of(block, "text")) or "")
        elif kind == "thinking":
            thinking.append(text(field_of(block, "thinking")) or "")
        elif kind == "tool_use":  # server tools (server_tool_use) are not the app's to run
            name = text(field_of(block, "name")) or ""
            tool_calls.append(
                ToolCallRequest(text(field_of(block, "id")), name, field_of(block, "input"))
            )
    reasoning = "\n\n".join(t for t in thinking if t) or None
    response = LLMResponse(
        response_id=response_id,
        response_model=model,
        finish_reasons=[stop_reason] if stop_reason else [],
        usage=usage,
        tool_calls=tool_calls,
        reasoning=reasoning,
        reasoning_source=sc.DecisionReasoningSourceValues.THINKING if reasoning else None,
        text="".join(texts) or None,
    )
    if _capturing_content():
        output: dict[str, Any] = {"role": "assistant", "parts": [content_part(b) for b in blocks]}
        if stop_reason:
            output["finish_reason"] = stop_reason
        response.output_messages = [output]
    return response


class MessageStreamAccumulator:
    """Folds the SSE events of a streamed message into an `LLMResponse`.

    `message_start` brings the id, model and input usage; each content block starts
    (`content_block_start`), grows by deltas (text, thinking, tool input JSON split across
    events) and stops; `message_delta` brings the stop reason and the final usage.
    A stream cut short still gives what arrived.

    `add` runs once per event, so it only keeps what arrives (the started blocks and the
    usage objects as the SDK made them, the delta strings); converting them waits for
    `response`, once per stream.
    """

    # delta type -> (its field, the block field it extends)
    _DELTAS: ClassVar[Mapping[str, tuple[str, str]]] = {
        "text_delta": ("text", "text"),
        "thinking_delta": ("thinking", "thinking"),
        "input_json_delta": ("partial_json", "input"),
        # signature_delta (opaque) and citations_delta (not part of the conventions'
        # text part) add nothing we record.
    }

    def __init__(self) -> None:
        self._id: str | None = None
        self._model: str | None = None
        self._stop_reason: str | None = None
        self._usages: list[Any] = []  # in arrival order: later counts win
        # `message_start`'s output count is a placeholder (1, say): the real one comes
        # with `message_delta`, which a stream closed early never got.
        self._final_usage = False
        self._blocks: dict[int, Any] = {}
        self._pieces: dict[tuple[int, str], list[str]] = {}  # joined once, at the end

    def add(self, event: Any) -> None:
        fields = fields_of(event)
        kind = fields.get("type")
        if kind == "content_block_delta":
            self._block_delta(fields)
        elif kind == "content_block_start":
            block = fields.get("content_block")
            if block is not None:
                self._blocks[count(fields.get("index"))] = block
        elif kind == "message_start":
            message = fields_of(fields.get("message"))
            self._id = text(message.get("id"))
            self._model = text(message.get("model"))
            self._add_usage(message.get("usage"))
        elif kind == "message_delta":
            stop_reason = text(fields_of(fields.get("delta")).get("stop_reason"))
            self._stop_reason = stop_reason or self._stop_reason
            self._add_usage(fields.get("usage"))
            self._final_usage = self._final_usage or fields.get("usage") is not None

    def _block_delta(self, event: Mapping[str, Any]) -> None:
        delta = fields_of(event.get("delta"))
        delta_type = delta.get("type")
        known = self._DELTAS.get(delta_type) if isinstance(delta_type, str) else None
        if known is None:
            return
        piece = delta.get(known[0])
        if isinstance(piece, str):
            key = (count(event.get("index")), known[1])
            pieces = self._pieces.get(key)
            if pieces is None:
                pieces = self._pieces[key] = []
            pieces.append(piece)

    def _add_usage(self, usage: Any) -> None:
        if usage is not None:
            self._usages.append(usage)

    def _merged_usage(self) -> dict[str, Any]:
        # `message_delta` repeats the counts so far; its output_tokens is the final one.
        # The counts are read by `token_usage`, which takes SDK models and dicts alike: no
        # need for the models' `to_dict()` (their unset fields are all None).
        merged: dict[str, Any] = {}
        for usage in self._usages:
            values = fields_of(usage) if _is_model_or_dict(usage) else _plain(usage)
            if isinstance(values, Mapping):
                merged.update({k: v for k, v in values.items() if v is not None})
        return merged

    def response(self) -> LLMResponse:
        usage = self._merged_usage()
        blocks = (self._finished_block(i) for i in sorted(self._blocks))
        response = response_from(
            response_id=self._id,
            model=self._model,
            stop_reason=self._stop_reason,
            usage=token_usage(usage) if usage else None,
            blocks=[block for block in blocks if block is not None],
        )
        response.output_tokens_known = self._final_usage
        return response

    def _finished_block(self, index: int) -> dict[str, Any] | None:
        block = _block_fields(self._blocks[index])
        if block is None:
            return None
        for name in ("text", "thinking"):
            pieces = self._pieces.get((index, name))
            if pieces:
                block[name] = (block.get(name) or "") + "".join(pieces)
        json_pieces = self._pieces.get((index, "input"))
        if json_pieces is not None:
            joined = "".join(json_pieces)
            try:
                block["input"] = json.loads(joined) if joined else {}
            except ValueError:
                block["input"] = joined  # cut off mid-arguments: keep what arrived
        return block


def _block_fields(block: Any) -> dict[str, Any] | None:
    """A started content block as a dict we may complete. Plain data, as the content
    parts need it, only when content is captured; otherwise the reader needs only a few
    top-level fields (type, text, thinking, id, name, input), and a shallow copy of an SDK
    model gives them without its `to_dict()`."""
    if not _capturing_content() and _is_model_or_dict(block):
        return dict(fields_of(block))
    plain = _plain(block)
    return plain if isinstance(plain, dict) else None


def _is_model_or_dict(value: Any) -> bool:
    return type(value) is dict or hasattr(type(value), "__pydantic_fields__")


class MessagesEndpoint:
    """`POST /v1/messages` for the shared Stainless wrapper."""

    def read_request(self, client: Any, body: Mapping[str, Any]) -> LLMRequest:
        return read_request(client, body)

    def read_response(self, response: Any) -> LLMResponse:
        return read_response(response)

    def new_accumulator(self) -> MessageStreamAccumulator:
        return MessageStreamAccumulator()


MESSAGES = MessagesEndpoint()

CLIENT = StainlessClient(
    package="anthropic",
    endpoints={("post", path): MESSAGES for path in MESSAGES_PATHS},
    attempt_method="_attempt_request",
)


# -- the SDK's own span -----------------------------------------------------------------


def _instead_of_native_span(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """`start_api_call_span(tracer, base_url, options, ...)`: for a call we record, a
    non-recording stand-in with our span's context, so the SDK propagates our trace context
    and starts no second span. Any other call gets the SDK's own span."""
    try:
        call = current_call()
        options = args[2] if len(args) > 2 else kwargs.get("options")
        if call is not None and CLIENT.endpoint_for(options) is not None:
            stand_in: Span = NonRecordingSpan(call.span.get_span_context())
            return stand_in
    except Exception as exc:
        report_internal_error("anthropic native span", exc)
    return wrapped(*args, **kwargs)


def patch(client_module: ModuleType) -> None:
    """Instrument the `anthropic` package (called when the application imports it)."""
    base_client = importlib.import_module(f"{client_module.__name__}._base_client")
    CLIENT.patch(base_client)
    factory = base_client.__dict__.get(_NATIVE_SPAN_FACTORY)
    patcher = CLIENT.adapter.patcher
    # Someone else's wrapper there is left alone (ours under theirs is found, not doubled).
    if callable(factory) and (
        not isinstance(factory, wrapt.FunctionWrapper) or patcher.is_ours(factory)
    ):
        patcher.wrap(base_client, _NATIVE_SPAN_FACTORY, _instead_of_native_span)


def unpatch() -> None:
    """Undo `patch`: the SDK behaves, and traces itself, exactly as before (the kit's
    patcher removes the native-span wrapper with the others, never one put on top of it)."""
    CLIENT.unpatch()


__all__ = [
    "CLIENT",
    "MESSAGES",
    "MessageStreamAccumulator",
    "MessagesEndpoint",
    "patch",
    "read_request",
    "read_response",
    "unpatch",
]
