"""Auto-instrumentation of the official `openai` SDK: chat completions and the Responses API.

The SDK sends every call through its Stainless base client, which `stainless.py` wraps once
for `create`, `parse`, the `.stream(...)` helpers, raw and streaming responses, async and
Azure clients alike. This module only says how to read OpenAI's requests, responses and
stream events, in three parts kept apart from the wrapping:

- request readers: body -> `LLMRequest` (parameters, and content in the conventions' shapes);
- response readers: `ChatCompletion` / `Response` -> `LLMResponse` (usage, the tool calls
  the model asked for, reasoning summaries, output messages);
- stream accumulators: chunks or events -> the same shape a complete response has, read by
  the same response reader, so a stream and a plain call give the same span.

Readers accept SDK models and plain mappings alike (`fields.field_of`), which is what lets an
accumulator hand a dict it built to the response reader.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from opentelemetry.util.types import AttributeValue

from otel_agents import semconv as sc
from otel_agents.adapters.fields import (
    error_in_body,
    field_of,
    fields_of,
    integer,
    items,
    nonempty_text,
    number,
)
from otel_agents.adapters.stainless import StainlessClient, provider_by_url, server_of
from otel_agents.core.inference import LLMRequest, LLMResponse, ToolCallRequest
from otel_agents.pricing import TokenUsage
from otel_agents.runtime import get_runtime

_AZURE_HOST_SUFFIXES = (
    ".openai.azure.com",
    ".cognitiveservices.azure.com",
    ".services.ai.azure.com",
)
_JSON_FORMATS = ("json_schema", "json_object")
# The conventions' finish reasons for output messages, where OpenAI spells them otherwise.
_FINISH_REASONS = {"tool_calls": "tool_call", "function_call": "tool_call"}
# Responses API items for the application's own tools: requested tool calls. Built-in tools
# that run on the client side stay plain parts; every other `*_call` item is a tool OpenAI
# runs on its side (web search, file search, code interpreter, MCP, ...).
_CLIENT_TOOL_ITEMS = ("function_call", "custom_tool_call")
_CLIENT_BUILTIN_ITEMS = ("computer_call", "local_shell_call", "shell_call", "apply_patch_call")


# -- small readers ------------------------------------------------------------------------


def _put(target: dict[str, AttributeValue], key: str, value: AttributeValue | None) -> None:
    if value is not None:
        target[key] = value


def _capturing() -> bool:
    """Content is converted only when it will be captured: a long history costs nothing
    when capture is off (the default)."""
    return get_runtime().settings.capture_content.enabled


# -- provider, server, usage ---------------------------------------------------------------


def _is_azure(client: Any, host: str | None) -> bool:
    azure_client = _azure_client_class()
    if azure_client is not None and isinstance(client, azure_client):
        return True
    return host is not None and host.lower().endswith(_AZURE_HOST_SUFFIXES)


@functools.cache
def _azure_client_class() -> type | None:
    """Looked up once: an import statement on every call costs microseconds."""
    try:
        from openai.lib.azure import BaseAzureClient
    except ImportError:
        return None
    return BaseAzureClient


def _new_request(client: Any, body: Mapping[str, Any]) -> LLMRequest:
    """The request's common fields. The provider is the SDK's (OpenAI, or Azure), unless
    the base URL is an OpenAI-compatible provider's (Groq, DeepSeek, ...): it answered,
    and its prices apply."""
    host, port = server_of(client)
    if _is_azure(client, host):
        provider: str = sc.GenAiProviderNameValues.AZURE_AI_OPENAI
    else:
        provider = provider_by_url(client) or sc.GenAiProviderNameValues.OPENAI
    return LLMRequest(
        provider=provider,
        model=nonempty_text(body.get("model")),
        stream=body.get("stream") is True,
        server_address=host,
        server_port=port,
        service_tier=nonempty_text(body.get("service_tier")),
    )


def _with_service_tier(request: LLMRequest) -> LLMRequest:
    if request.service_tier is not None:
        request.parameters[sc.OPENAI_REQUEST_SERVICE_TIER] = request.service_tier
    return request


def _read_outcome(response: LLMResponse, result: Any) -> LLMResponse:
    """What both APIs report beside the answer: the tier that served it, and an error
    object in the body of a successful HTTP response."""
    tier = nonempty_text(field_of(result, "service_tier"))
    if tier is not None:
        response.service_tier = tier
        response.attributes[sc.OPENAI_RESPONSE_SERVICE_TIER] = tier
    error = error_in_body(result)
    if error is not None:
        response.error_type, response.error_message = error
    return response


def _output_type(format_type: Any) -> str | None:
    if not isinstance(format_type, str):
        return None
    if format_type in _JSON_FORMATS:
        return sc.GenAiOutputTypeValues.JSON
    return sc.GenAiOutputTypeValues.TEXT


def _token_usage(
    usage: Any, input_key: str, output_key: str, input_details: str, output_details: str
) -> TokenUsage | None:
    """OpenAI's counts already include cached input and reasoning output, as the
    conventions want; only the key names differ between the two APIs."""
    if usage is None:
        return None
    counts = fields_of(usage)
    inputs = fields_of(counts.get(input_details))
    return TokenUsage(
        integer(counts.get(input_key)) or 0,
        integer(counts.get(output_key)) or 0,
        integer(inputs.get("cached_tokens")) or 0,
        integer(inputs.get("cache_write_tokens")) or 0,
        integer(fields_of(counts.get(output_details)).get("reasoning_tokens")) or 0,
    )


# -- content in the conventions' shapes ------------------------------------------------------


def _text(content: str) -> dict[str, Any]:
    return {"type": "text", "content": content}


def _arguments(raw: Any) -> Any:
    """Tool arguments as an object when the model's JSON string parses, else as sent."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": _arguments(arguments)}


def _media(
    modality: str, *, url: Any = None, data: Any = None, file_id: Any = None, mime: Any = None
) -> dict[str, Any] | None:
    """An image, audio or document given inline (blob), by address (uri) or by id (file)."""
    inline = data if isinstance(data, str) else None
    if isinstance(url, str) and url.startswith("data:"):
        inline = url
    if inline is not None:
        part: dict[str, Any] = {"type": "blob", "modality": modality}
        if inline.startswith("data:") and "," in inline:
            header, inline = inline[5:].split(",", 1)
            mime = mime or header.split(";", 1)[0] or None
        if mime:
            part["mime_type"] = mime
        part["content"] = inline
        return part
    if isinstance(url, str):
        return {"type": "uri", "modality": modality, "uri": url}
    if isinstance(file_id, str):
        return {"type": "file", "modality": modality, "file_id": file_id}
    return None


def _content_part(part: Any) -> dict[str, Any]:
    """One content part of either API (`text`/`input_text`/`output_text`, images, ...)."""
    kind = str(field_of(part, "type") or "unknown")
    if kind in ("text", "input_text", "output_text"):
        return _text(str(field_of(part, "text") or ""))
    if kind == "refusal":
        return {"type": "refusal", "content": field_of(part, "refusal")}
    return _media_part(kind, part) or {"type": kind}


def _media_part(kind: str, part: Any) -> dict[str, Any] | None:
    if kind == "image_url":  # chat
        return _media("image", url=field_of(field_of(part, "image_url"), "url"))
    if kind == "input_image":  # responses
        return _media("image", url=field_of(part, "image_url"), file_id=field_of(part, "file_id"))
    if kind == "input_audio":
        audio = field_of(part, "input_audio", part)
        audio_format = field_of(audio, "format")
        mime = f"audio/{audio_format}" if isinstance(audio_format, str) else None
        return _media("audio", data=field_of(audio, "data"), mime=mime)
    if kind in ("file", "input_file"):
        file = field_of(part, "file", part)  # chat nests the fields under "file"
        return _media(
            "document",
            url=field_of(file, "file_url"),
            data=field_of(file, "file_data"),
            file_id=field_of(file, "file_id"),
        )
    return None


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [_text(content)] if content else []
    return [_content_part(part) for part in items(content)]


def _plain_text(content: Any) -> Any:
    """A tool result as text: a string, or the text parts joined."""
    if isinstance(content, str) or not isinstance(content, (list, tuple)):
        return content
    return "".join(str(field_of(part, "text") or "") for part in content)


def _tool_definition(tool: Any) -> dict[str, Any]:
    """A tool offered to the model; chat nests function fields under `function`."""
    kind = str(field_of(tool, "type") or "function")
    spec = field_of(tool, kind) if kind in ("function", "custom") else None
    spec = spec if spec is not None else tool
    name = field_of(spec, "name") or field_of(tool, "server_label") or kind
    definition: dict[str, Any] = {"type": kind, "name": name}
    for key in ("description", "parameters"):
        value = field_of(spec, key)
        if value is not None:
            definition[key] = value
    return definition


def _tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    definitions = [_tool_definition(tool) for tool in items(tools)]
    return definitions or None


def _output_message(parts: list[dict[str, Any]], finish_reason: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "parts": parts}
    if finish_reason:
        message["finish_reason"] = _FINISH_REASONS.get(finish_reason, finish_reason)
    return message


# -- chat completions ---------------------------------------------------------------------


class ChatCompletions:
    """`POST /chat/completions`: `chat.completions.create`, `parse`, `stream`."""

    def read_request(self, client: Any, body: Mapping[str, Any]) -> LLMRequest:
        request = _new_request(client, body)
        request.parameters = _chat_parameters(body)
        if _capturing():
            request.input_messages = [_chat_message(m) for m in items(body.get("messages"))]
            # `functions` is the legacy spelling of `tools`
            request.tool_definitions = _tool_definitions(body.get("tools") or body.get("functions"))
        return _with_service_tier(request)

    def read_response(self, completion: Any) -> LLMResponse:
        fields = fields_of(completion)
        response = LLMResponse(
            response_id=nonempty_text(fields.get("id")),
            response_model=nonempty_text(fields.get("model")),
            usage=_token_usage(
                fields.get("usage"),
                "prompt_tokens",
                "completion_tokens",
                "prompt_tokens_details",
                "completion_tokens_details",
            ),
        )
        capturing = _capturing()
        messages: list[dict[str, Any]] = []
        for choice in items(fields.get("choices")):
            choice_fields = fields_of(choice)
            message = choice_fields.get("message")
            message_fields = fields_of(message)
            finish_reason = nonempty_text(choice_fields.get("finish_reason"))
            if finish_reason:
                response.finish_reasons.append(finish_reason)
            calls = [_chat_tool_call(call) for call in items(message_fields.get("tool_calls"))]
            legacy_call = message_fields.get("function_call")  # the legacy `functions` API
            if legacy_call is not None and not calls:
                calls.append(_legacy_function_call(legacy_call))
            response.tool_calls.extend(calls)
            text = nonempty_text(message_fields.get("content"))
            if response.text is None and text:
                response.text = text  # the decision path's fallback reasoning
            if capturing:
                parts = _chat_output_parts(message, calls)
                messages.append(_output_message(parts, finish_reason))
        if capturing:
            response.output_messages = messages
        return _read_outcome(response, completion)

    def new_accumulator(self) -> ChatStreamAccumulator:
        return ChatStreamAccumulator(self)


def _chat_parameters(body: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """The request parameters the conventions name. A body usually sets few of them, so
    only the keys it has are read (one set operation, then a reader per key)."""
    params: dict[str, AttributeValue] = {}
    for key in _CHAT_PARAMETER_READERS.keys() & body.keys():
        _CHAT_PARAMETER_READERS[key](params, body[key])
    return params


def _reader(attribute: str, convert: Callable[[Any], Any]) -> _ParameterReader:
    def read(params: dict[str, AttributeValue], value: Any) -> None:
        _put(params, attribute, convert(value))

    return read


def _read_max_tokens(params: dict[str, AttributeValue], value: Any) -> None:
    # The legacy `max_tokens`, unless `max_completion_tokens` is also set (it wins).
    if integer(value) is not None:
        params.setdefault(sc.GEN_AI_REQUEST_MAX_TOKENS, value)


def _read_choice_count(params: dict[str, AttributeValue], value: Any) -> None:
    choices = integer(value)
    if choices is not None and choices != 1:  # the conventions record it only when != 1
        params[sc.GEN_AI_REQUEST_CHOICE_COUNT] = choices


def _read_stop(params: dict[str, AttributeValue], stop: Any) -> None:
    if isinstance(stop, str):
        params[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = [stop]
    elif isinstance(stop, (list, tuple)) and stop:
        params[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = [str(s) for s in stop]


_ParameterReader = Callable[[dict[str, AttributeValue], Any], None]
_CHAT_PARAMETER_READERS: dict[str, _ParameterReader] = {
    "max_completion_tokens": _reader(sc.GEN_AI_REQUEST_MAX_TOKENS, integer),
    "max_tokens": _read_max_tokens,
    "temperature": _reader(sc.GEN_AI_REQUEST_TEMPERATURE, number),
    "top_p": _reader(sc.GEN_AI_REQUEST_TOP_P, number),
    "frequency_penalty": _reader(sc.GEN_AI_REQUEST_FREQUENCY_PENALTY, number),
    "presence_penalty": _reader(sc.GEN_AI_REQUEST_PRESENCE_PENALTY, number),
    "seed": _reader(sc.GEN_AI_REQUEST_SEED, integer),
    "n": _read_choice_count,
    "stop": _read_stop,
    "reasoning_effort": _reader(sc.GEN_AI_REQUEST_REASONING_LEVEL, nonempty_text),
    "response_format": _reader(
        sc.GEN_AI_OUTPUT_TYPE, lambda value: _output_type(field_of(value, "type"))
    ),
}


def _chat_message(message: Any) -> dict[str, Any]:
    role = str(field_of(message, "role") or "user")
    content = field_of(message, "content")
    if role in ("tool", "function"):  # a tool result (`function` is the legacy spelling)
        result: dict[str, Any] = {
            "role": "tool",
            "parts": [
                {
                    "type": "tool_call_response",
                    "id": field_of(message, "tool_call_id"),
                    "response": _plain_text(content),
                }
            ],
        }
    else:
        parts = _content_parts(content)
        for call in items(field_of(message, "tool_calls")):
            parsed = _chat_tool_call(call)
            parts.append(_tool_call(parsed.call_id, parsed.name, parsed.arguments))
        legacy_call = field_of(message, "function_call")
        if legacy_call is not None:
            legacy = _legacy_function_call(legacy_call)
            parts.append(_tool_call(None, legacy.name, legacy.arguments))
        result = {"role": role, "parts": parts}
    name = nonempty_text(field_of(message, "name"))
    if name:
        result["name"] = name
    return result


def _legacy_function_call(call: Any) -> ToolCallRequest:
    """`message.function_call` of the legacy `functions` API: no id, one call per message."""
    fields = fields_of(call)
    return ToolCallRequest(None, str(fields.get("name")), fields.get("arguments"))


def _chat_tool_call(call: Any) -> ToolCallRequest:
    """A function call (`function.name/arguments`) or a custom tool call (`custom.input`)."""
    fields = fields_of(call)
    custom = fields.get("custom")
    if custom is not None:
        return ToolCallRequest(
            fields.get("id"), str(field_of(custom, "name")), field_of(custom, "input")
        )
    function = fields_of(fields.get("function"))
    return ToolCallRequest(fields.get("id"), str(function.get("name")), function.get("arguments"))


def _chat_output_parts(message: Any, calls: list[ToolCallRequest]) -> list[dict[str, Any]]:
    parts = _content_parts(field_of(message, "content"))
    refusal = nonempty_text(field_of(message, "refusal"))
    if refusal:
        parts.append({"type": "refusal", "content": refusal})
    parts.extend(_tool_call(c.call_id, c.name, c.arguments) for c in calls)
    return parts


class _AttributeReader:
    """A chunk given as a dict, read the way an SDK model is: by attribute, None when
    absent, nested dicts (also inside lists) read the same way."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self._fields = fields

    def __getattr__(self, name: str) -> Any:
        return _readable(self._fields.get(name))

    def __bool__(self) -> bool:
        return bool(self._fields)


def _readable(value: Any) -> Any:
    if type(value) is dict:
        return _AttributeReader(value)
    if type(value) is list:
        return [_readable(item) for item in value]
    return value


class _ToolCallState:
    """One streamed tool call: id and name first, then its arguments string a few
    characters per chunk (kept as pieces, joined once at the end)."""

    __slots__ = ("arguments", "call_id", "name")

    def __init__(self) -> None:
        self.call_id: Any = None
        self.name: list[str] = []
        self.arguments: list[str] = []

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.call_id,
            "type": "function",
            "function": {"name": "".join(self.name), "arguments": "".join(self.arguments)},
        }


class _ChoiceState:
    __slots__ = ("content", "finish_reason", "function_call", "refusal", "role", "tool_calls")

    def __init__(self) -> None:
        self.role = "assistant"
        self.content: list[str] = []
        self.refusal: list[str] = []
        self.tool_calls: dict[int, _ToolCallState] = {}
        self.function_call: _ToolCallState | None = None  # the legacy `functions` API
        self.finish_reason: str | None = None

    def add_function_call(self, delta: Any) -> None:
        call = self.function_call
        if call is None:
            call = self.function_call = _ToolCallState()
        name = getattr(delta, "name", None)
        if name and type(name) is str:
            call.name.append(name)
        arguments = getattr(delta, "arguments", None)
        if arguments and type(arguments) is str:
            call.arguments.append(arguments)

    def add_tool_calls(self, deltas: Any) -> None:
        calls = self.tool_calls
        for delta in deltas:
            index = getattr(delta, "index", 0)
            if type(index) is not int:
                index = integer(index) or 0
            call = calls.get(index)
            if call is None:
                call = calls[index] = _ToolCallState()
            call_id = delta.id
            if call_id:
                call.call_id = call_id
            function = delta.function
            if function is None:
                continue
            name = function.name
            if name and type(name) is str:
                call.name.append(name)
            arguments = function.arguments
            if arguments and type(arguments) is str:
                call.arguments.append(arguments)

    def as_choice(self, index: int) -> dict[str, Any]:
        message = {
            "role": self.role,
            "content": "".join(self.content) or None,
            "refusal": "".join(self.refusal) or None,
            "tool_calls": [call.as_dict() for _, call in sorted(self.tool_calls.items())],
        }
        if self.function_call is not None:
            message["function_call"] = self.function_call.as_dict()["function"]
        return {"index": index, "message": message, "finish_reason": self.finish_reason}


class ChatStreamAccumulator:
    """Folds `ChatCompletionChunk`s into a completion-shaped dict for the chat reader.

    Usage arrives in a last chunk with no choices, when the request set
    `stream_options.include_usage`. `add` runs once per chunk, so it only picks the pieces
    up, reading attributes; the completion is built and read once, by `response`.
    """

    def __init__(self, endpoint: ChatCompletions) -> None:
        self._endpoint = endpoint
        self._id: str | None = None
        self._model: str | None = None
        self._usage: Any = None
        self._service_tier: Any = None
        self._error: Any = None
        self._choices: dict[int, _ChoiceState] = {}

    def add(self, chunk: Any) -> None:
        # Chunks are SDK models, read by attribute: the cheapest read there is, and this runs
        # for every chunk. The fields the SDK declares optional (default None) are always
        # there; those it declares required are read with a default, since a server may
        # leave them out (some OpenAI-compatible servers omit a tool call's `index`). A
        # chunk given as a dict is read through a view that does the same.
        if type(chunk) is dict:
            chunk = _AttributeReader(chunk)
        if self._id is None:
            self._id = nonempty_text(getattr(chunk, "id", None))
            self._model = self._model or nonempty_text(getattr(chunk, "model", None))
        usage = chunk.usage
        if usage:
            self._usage = usage
        tier = getattr(chunk, "service_tier", None)
        if tier:
            self._service_tier = tier
        choices = getattr(chunk, "choices", None)
        if not choices:
            return
        for choice in choices:
            index = getattr(choice, "index", 0)
            if type(index) is not int:
                index = integer(index) or 0
            state = self._choices.get(index)
            if state is None:
                state = self._choices[index] = _ChoiceState()
            delta = getattr(choice, "delta", None)
            if delta is not None:
                content = delta.content
                if content and type(content) is str:
                    state.content.append(content)
                tool_calls = delta.tool_calls
                if tool_calls:
                    state.add_tool_calls(tool_calls)
                elif not content:  # the first chunk names the role; a refusal has no content
                    function_call = getattr(delta, "function_call", None)  # legacy `functions`
                    if function_call:
                        state.add_function_call(function_call)
                    role = delta.role
                    if role and type(role) is str:
                        state.role = role
                    refusal = delta.refusal
                    if refusal and type(refusal) is str:
                        state.refusal.append(refusal)
            finish_reason = choice.finish_reason
            if finish_reason and type(finish_reason) is str:
                state.finish_reason = finish_reason

    def response(self) -> LLMResponse:
        completion = {
            "id": self._id,
            "model": self._model,
            "usage": self._usage,
            "service_tier": self._service_tier,
            "choices": [state.as_choice(i) for i, state in sorted(self._choices.items())],
        }
        return self._endpoint.read_response(completion)


# -- the Responses API -----------------------------------------------------------------------


class Responses:
    """`POST /responses`: `responses.create`, `parse`, `stream`."""

    def read_request(self, client: Any, body: Mapping[str, Any]) -> LLMRequest:
        request = _new_request(client, body)
        request.parameters = _responses_parameters(body)
        previous = nonempty_text(body.get("previous_response_id"))
        if previous:
            request.parameters[sc.GEN_AI_REQUEST_PREVIOUS_RESPONSE_ID] = previous
        conversation = body.get("conversation")
        request.conversation_id = nonempty_text(field_of(conversation, "id", conversation))
        if _capturing():
            request.input_messages = _responses_input(body.get("input"))
            request.system_instructions = _system_instructions(body.get("instructions"))
            request.tool_definitions = _tool_definitions(body.get("tools"))
        return _with_service_tier(request)

    def read_response(self, result: Any) -> LLMResponse:
        response = LLMResponse(
            response_id=nonempty_text(field_of(result, "id")),
            response_model=nonempty_text(field_of(result, "model")),
            usage=_token_usage(
                field_of(result, "usage"),
                "input_tokens",
                "output_tokens",
                "input_tokens_details",
                "output_tokens_details",
            ),
        )
        output = _ResponseOutput()
        for item in items(field_of(result, "output")):
            output.add(item)
        response.tool_calls = output.tool_calls
        response.text = "".join(output.texts) or None
        if output.summaries:
            response.reasoning = "\n\n".join(output.summaries)
            response.reasoning_source = sc.DecisionReasoningSourceValues.REASONING_SUMMARY
        elif output.thinking:
            response.reasoning = "\n\n".join(output.thinking)
            response.reasoning_source = sc.DecisionReasoningSourceValues.THINKING
        finish_reason = _responses_finish_reason(result, bool(output.tool_calls))
        if finish_reason:
            response.finish_reasons = [finish_reason]
        if _capturing():
            response.output_messages = [_output_message(output.parts, finish_reason)]
        _read_outcome(response, result)
        if response.error_type is None and field_of(result, "status") == "failed":
            response.error_type = "failed"  # failed without saying why
        return response

    def new_accumulator(self) -> ResponsesStreamAccumulator:
        return ResponsesStreamAccumulator(self)


def _responses_parameters(body: Mapping[str, Any]) -> dict[str, AttributeValue]:
    params: dict[str, AttributeValue] = {}
    _put(params, sc.GEN_AI_REQUEST_MAX_TOKENS, integer(body.get("max_output_tokens")))
    _put(params, sc.GEN_AI_REQUEST_TEMPERATURE, number(body.get("temperature")))
    _put(params, sc.GEN_AI_REQUEST_TOP_P, number(body.get("top_p")))
    effort = nonempty_text(field_of(body.get("reasoning"), "effort"))
    _put(params, sc.GEN_AI_REQUEST_REASONING_LEVEL, effort)
    text_format = field_of(field_of(body.get("text"), "format"), "type")
    _put(params, sc.GEN_AI_OUTPUT_TYPE, _output_type(text_format))
    return params


def _system_instructions(instructions: Any) -> list[dict[str, Any]] | None:
    if isinstance(instructions, str):
        return [_text(instructions)] if instructions else None
    parts = [
        part for item in items(instructions) for part in _content_parts(field_of(item, "content"))
    ]
    return parts or None


def _responses_input(input_items: Any) -> list[dict[str, Any]]:
    """Input items as chat messages; a model's own items (reasoning, tool calls) that
    follow each other join one assistant message, as they came from one turn."""
    if isinstance(input_items, str):
        return [{"role": "user", "parts": [_text(input_items)]}]
    messages: list[dict[str, Any]] = []
    for item in items(input_items):
        role, parts = _input_item(item)
        if messages and role == "assistant" and messages[-1]["role"] == "assistant":
            messages[-1]["parts"].extend(parts)
        else:
            messages.append({"role": role, "parts": parts})
    return messages


def _input_item(item: Any) -> tuple[str, list[dict[str, Any]]]:
    kind = field_of(item, "type") or "message"
    if kind == "message":
        return str(field_of(item, "role") or "user"), _content_parts(field_of(item, "content"))
    if kind in ("function_call_output", "custom_tool_call_output"):
        response = {"type": "tool_call_response", "id": field_of(item, "call_id")}
        response["response"] = _plain_text(field_of(item, "output"))
        return "tool", [response]
    output = _ResponseOutput()
    output.add(item)
    return "assistant", output.parts


class _ResponseOutput:
    """Reads Responses API output items: the message parts, and what the decision path
    needs (tool calls, reasoning summaries, visible text)."""

    def __init__(self) -> None:
        self.parts: list[dict[str, Any]] = []
        self.tool_calls: list[ToolCallRequest] = []
        self.summaries: list[str] = []
        self.thinking: list[str] = []
        self.texts: list[str] = []

    def add(self, item: Any) -> None:
        kind = str(field_of(item, "type") or "")
        if kind == "message":
            for part in items(field_of(item, "content")):
                converted = _content_part(part)
                self.parts.append(converted)
                if converted["type"] == "text":
                    self.texts.append(converted["content"])
        elif kind == "reasoning":
            self._add_reasoning(item)
        elif kind in _CLIENT_TOOL_ITEMS:
            arguments = field_of(item, "arguments" if kind == "function_call" else "input")
            call = ToolCallRequest(
                field_of(item, "call_id"), str(field_of(item, "name")), arguments
            )
            self.tool_calls.append(call)
            self.parts.append(_tool_call(call.call_id, call.name, arguments))
        elif kind.endswith("_call") and kind not in _CLIENT_BUILTIN_ITEMS:
            name = field_of(item, "name") or kind.removesuffix("_call")
            self.parts.append(
                {
                    "type": "server_tool_call",
                    "id": field_of(item, "id"),
                    "name": name,
                    "server_tool_call": {"type": kind},
                }
            )
        elif kind:
            self.parts.append({"type": kind})

    def _add_reasoning(self, item: Any) -> None:
        """Summaries are what OpenAI shows of its models' reasoning; open-weight models
        return the reasoning text itself in `content`."""
        for source, target in (("summary", self.summaries), ("content", self.thinking)):
            for entry in items(field_of(item, source)):
                text = nonempty_text(field_of(entry, "text"))
                if text:
                    target.append(text)
                    self.parts.append({"type": "reasoning", "content": text})


def _responses_finish_reason(result: Any, has_tool_calls: bool) -> str | None:
    """The Responses API has a status instead of finish reasons; in the conventions' terms."""
    status = field_of(result, "status")
    if status == "completed":
        return "tool_call" if has_tool_calls else "stop"
    if status == "incomplete":
        reason = field_of(field_of(result, "incomplete_details"), "reason")
        return "length" if reason == "max_output_tokens" else nonempty_text(reason) or "incomplete"
    if status == "failed":
        return "error"
    return nonempty_text(status) if status not in (None, "in_progress", "queued") else None


class ResponsesStreamAccumulator:
    """Folds Responses API stream events into a response for the Responses reader.

    A finished stream ends with `response.completed` (or `.failed` / `.incomplete`), which
    carries the whole response; a stream left early is rebuilt from the items and deltas
    seen so far.
    """

    def __init__(self, endpoint: Responses) -> None:
        self._endpoint = endpoint
        self._final: Any = None
        self._started: Any = None
        self._items: dict[int, dict[str, Any]] = {}

    def add(self, event: Any) -> None:
        kind = str(field_of(event, "type") or "")
        if kind in ("response.completed", "response.failed", "response.incomplete"):
            self._final = field_of(event, "response")
        elif kind in ("response.created", "response.in_progress", "response.queued"):
            self._started = field_of(event, "response")
        elif kind in ("response.output_item.added", "response.output_item.done"):
            self._items[self._index(event)] = _as_dict(field_of(event, "item"))
        elif kind.startswith("response.function_call_arguments."):
            self._add_arguments(event, kind.endswith(".done"))
        elif kind.startswith("response.reasoning_summary_text."):
            self._add_text(event, "summary", "summary_index", kind.endswith(".done"))
        elif kind.startswith("response.output_text."):
            self._add_text(event, "content", "content_index", kind.endswith(".done"))

    def response(self) -> LLMResponse:
        if self._final is not None:
            return self._endpoint.read_response(self._final)
        partial = {
            "id": field_of(self._started, "id"),
            "model": field_of(self._started, "model"),
            "output": [item for _, item in sorted(self._items.items())],
        }
        return self._endpoint.read_response(partial)

    def _index(self, event: Any) -> int:
        return integer(field_of(event, "output_index")) or 0

    def _add_arguments(self, event: Any, done: bool) -> None:
        item = self._items.setdefault(self._index(event), {"type": "function_call"})
        if done:
            item["arguments"] = field_of(event, "arguments")
        else:
            item["arguments"] = (item.get("arguments") or "") + str(field_of(event, "delta", ""))

    def _add_text(self, event: Any, list_key: str, index_key: str, done: bool) -> None:
        default_type = "reasoning" if list_key == "summary" else "message"
        item = self._items.setdefault(self._index(event), {"type": default_type})
        entries = item.get(list_key)
        if not isinstance(entries, list):
            entries = item[list_key] = []
        position = integer(field_of(event, index_key)) or 0
        while len(entries) <= position:
            entries.append({"type": "output_text" if list_key == "content" else "summary_text"})
        entry = entries[position] = _as_dict(entries[position])
        if done:
            entry["text"] = field_of(event, "text")
        else:
            entry["text"] = str(entry.get("text") or "") + str(field_of(event, "delta", ""))


def _as_dict(value: Any) -> dict[str, Any]:
    """A mutable copy of an SDK model (or mapping), for building up from deltas."""
    if isinstance(value, Mapping):
        return dict(value)
    dump = getattr(value, "model_dump", None)
    return dict(dump()) if callable(dump) else {}


# -- patching --------------------------------------------------------------------------------

_CLIENT = StainlessClient(
    "openai",
    endpoints={
        ("post", "/chat/completions"): ChatCompletions(),
        ("post", "/responses"): Responses(),
    },
    attempt_method="_send_request",
)


def patch(client_module: ModuleType) -> None:
    """Called with the `openai` package when the application imports it."""
    _CLIENT.patch(importlib.import_module(f"{client_module.__name__}._base_client"))


def unpatch() -> None:
    _CLIENT.unpatch()
