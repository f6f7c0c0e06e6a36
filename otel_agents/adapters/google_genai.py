"""Auto-instrumentation of the `google-genai` SDK: the Gemini API and Vertex AI.

One `generate_content {model}` span per model call. The hooks sit on the SDK's per-request
methods (`Models._generate_content` / `_generate_content_stream` and their `AsyncModels`
twins), not on the public `generate_content`: with Python functions as tools (automatic
function calling), the public method loops, calling the model and running the functions
itself, and each of those model calls is a span of its own. Chats, continuation hops and
`generate_content_stream` all go through the same methods.

- The sync stream method is a generator function: the kit wraps the generator it returns
  (the HTTP request runs on the first `next`, so an API error arrives mid-stream). The
  async one is a coroutine that returns an async generator.
- Provider: `gcp.vertex_ai` for a Vertex AI client (`vertexai=True`), else `gcp.gemini`;
  `server.address`/`server.port` from the client's base URL.
- Parts with `thought=True` are thought summaries: the reasoning (source
  `reasoning_summary`); `function_call` parts are the tool calls (`id` when the API gave
  one); finish reasons are Gemini's, lower-cased (`stop`, `max_tokens`, `safety`, ...).
- Usage: `prompt_token_count` (+ `tool_use_prompt_token_count`) is the input and includes
  `cached_content_token_count` (cache reads); the output is `candidates_token_count` plus
  `thoughts_token_count`, as the conventions count reasoning inside the output.
- A prompt blocked by safety filters (`prompt_feedback.block_reason`, no candidates) is
  an error in a successful response: `error.type` `prompt_blocked`.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.util.types import AttributeValue

from otel_agents import semconv as sc
from otel_agents.adapters.fields import count, field_of, integer, items, number, text
from otel_agents.adapters.kit import ClientAdapter, Hook, Readers
from otel_agents.core.inference import LLMRequest, LLMResponse, ToolCallRequest
from otel_agents.pricing import TokenUsage
from otel_agents.runtime import get_runtime

GEMINI = sc.GenAiProviderNameValues.GCP_GEMINI
VERTEX_AI = sc.GenAiProviderNameValues.GCP_VERTEX_AI
PROMPT_BLOCKED = "prompt_blocked"
_MODEL_PREFIXES = ("models/", "tunedModels/")
# What a streamed part other than text may carry (each arrives whole).
_PART_FIELDS = (
    "function_call",
    "function_response",
    "inline_data",
    "file_data",
    "executable_code",
    "code_execution_result",
)


def _capturing_content() -> bool:
    return get_runtime().settings.capture_content.enabled


def _name(value: Any) -> str | None:
    """An SDK enum member (`FinishReason.STOP`) or a string, as its value."""
    if isinstance(value, Enum):
        value = value.value
    return value if isinstance(value, str) and value else None


def _plain(value: Any, depth: int = 0) -> Any:
    """SDK models as JSON-able data (bytes as base64), for captured content."""
    if depth > 16:
        return None
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        value = dump(exclude_none=True)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(item, depth + 1) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Enum):
        return value.value
    return value


# -- request ------------------------------------------------------------------------------


def read_request(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> LLMRequest:
    """An `LLMRequest` from `_generate_content(model=, contents=, config=)`."""
    return _request(instance, kwargs, stream=False)


def read_stream_request(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> LLMRequest:
    return _request(instance, kwargs, stream=True)


def _request(models: Any, kwargs: Mapping[str, Any], *, stream: bool) -> LLMRequest:
    api_client = getattr(models, "_api_client", None)
    config = kwargs.get("config")
    address, port = server_of(api_client)
    request = LLMRequest(
        provider=VERTEX_AI if getattr(api_client, "vertexai", False) is True else GEMINI,
        model=model_name(kwargs.get("model")),
        operation=sc.GenAiOperationNameValues.GENERATE_CONTENT,
        stream=stream,
        server_address=address,
        server_port=port,
        parameters=request_parameters(config),
    )
    if _capturing_content():
        request.input_messages = input_messages(kwargs.get("contents"))
        request.system_instructions = system_instructions(field_of(config, "system_instruction"))
        request.tool_definitions = tool_definitions(field_of(config, "tools"))
    return request


def model_name(model: Any) -> str | None:
    """`models/gemini-2.5-flash` and `publishers/google/models/gemini-2.5-flash` name the
    model `gemini-2.5-flash`, as the response's `model_version` and price tables do."""
    name = text(model)
    if not name:
        return None
    if "/models/" in name:
        return name.rsplit("/models/", 1)[1]
    for prefix in _MODEL_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def server_of(api_client: Any) -> tuple[str | None, int | None]:
    options = getattr(api_client, "_http_options", None)
    return _server_of_url(text(field_of(options, "base_url")))


@functools.lru_cache(maxsize=64)
def _server_of_url(url: str | None) -> tuple[str | None, int | None]:
    if not url:
        return None, None
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None, None
    return parts.hostname, port


def request_parameters(config: Any) -> dict[str, AttributeValue]:
    """The `gen_ai.request.*` attributes of a `GenerateContentConfig` (or its dict)."""
    parameters: dict[str, AttributeValue] = {}
    for key, attribute in (
        ("max_output_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS),
        ("top_k", sc.GEN_AI_REQUEST_TOP_K),
        ("candidate_count", sc.GEN_AI_REQUEST_CHOICE_COUNT),
        ("seed", sc.GEN_AI_REQUEST_SEED),
    ):
        value = field_of(config, key)
        # The SDK types `top_k` as a float; the conventions want an int.
        whole = int(value) if isinstance(value, float) and value.is_integer() else integer(value)
        if whole is not None:
            parameters[attribute] = whole
    for key, attribute in (
        ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE),
        ("top_p", sc.GEN_AI_REQUEST_TOP_P),
        ("presence_penalty", sc.GEN_AI_REQUEST_PRESENCE_PENALTY),
        ("frequency_penalty", sc.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ):
        number_value = number(field_of(config, key))
        if number_value is not None:
            parameters[attribute] = number_value
    stops = [s for s in items(field_of(config, "stop_sequences")) if isinstance(s, str)]
    if stops:
        parameters[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = stops
    mime_type = text(field_of(config, "response_mime_type"))
    if mime_type == "application/json":
        parameters[sc.GEN_AI_OUTPUT_TYPE] = sc.GenAiOutputTypeValues.JSON
    elif mime_type == "text/plain":
        parameters[sc.GEN_AI_OUTPUT_TYPE] = sc.GenAiOutputTypeValues.TEXT
    # `thinking_level` (low/high) is a reasoning level; `thinking_budget` counts tokens and
    # is not one, so it is left out.
    level = _name(field_of(field_of(config, "thinking_config"), "thinking_level"))
    if level and level != "THINKING_LEVEL_UNSPECIFIED":
        parameters[sc.GEN_AI_REQUEST_REASONING_LEVEL] = level.lower()
    return parameters


def input_messages(contents: Any) -> list[dict[str, Any]]:
    """`contents` (a string, a part, a `Content`, or a list of them) as the conventions'
    messages. Loose strings and parts in a list make one user message, as the SDK sends."""
    listed = contents if isinstance(contents, (list, tuple)) else [contents]
    messages: list[dict[str, Any]] = []
    loose: list[dict[str, Any]] = []
    for item in listed:
        if item is None:
            continue
        if isinstance(item, str) or field_of(item, "parts") is None:
            loose.append(content_part(item))
            continue
        if loose:
            messages.append({"role": "user", "parts": loose})
            loose = []
        messages.append(content_message(item))
    if loose:
        messages.append({"role": "user", "parts": loose})
    return messages


def content_message(content: Any) -> dict[str, Any]:
    role = text(field_of(content, "role")) or "user"
    parts = [content_part(part) for part in items(field_of(content, "parts"))]
    return {"role": "assistant" if role == "model" else role, "parts": parts}


def content_part(part: Any) -> dict[str, Any]:
    """One `Part` (or a string) as a conventions' part."""
    if isinstance(part, str):
        return {"type": "text", "content": part}
    part_text = text(field_of(part, "text"))
    if part_text is not None:
        kind = "reasoning" if field_of(part, "thought") is True else "text"
        return {"type": kind, "content": part_text}
    call = field_of(part, "function_call")
    if call is not None:
        return {
            "type": "tool_call",
            "id": text(field_of(call, "id")),
            "name": text(field_of(call, "name")) or "",
            "arguments": _plain(field_of(call, "args")),
        }
    result = field_of(part, "function_response")
    if result is not None:
        return {
            "type": "tool_call_response",
            "id": text(field_of(result, "id")),
            "response": _plain(field_of(result, "response")),
        }
    return _media_part(part)


def _media_part(part: Any) -> dict[str, Any]:
    inline = field_of(part, "inline_data")
    if inline is not None:
        mime_type = text(field_of(inline, "mime_type"))
        return {
            "type": "blob",
            "modality": _modality(mime_type),
            "mime_type": mime_type,
            "content": _plain(field_of(inline, "data")),
        }
    file = field_of(part, "file_data")
    if file is not None:
        mime_type = text(field_of(file, "mime_type"))
        return {
            "type": "uri",
            "modality": _modality(mime_type),
            "mime_type": mime_type,
            "uri": text(field_of(file, "file_uri")),
        }
    for server_kind in ("executable_code", "code_execution_result"):
        value = field_of(part, server_kind)
        if value is not None:
            return {"type": server_kind, "content": _plain(value)}
    return {"type": "unknown"}


def _modality(mime_type: str | None) -> str:
    major = (mime_type or "").split("/", 1)[0]
    return major if major in ("image", "audio", "video") else "document"


def system_instructions(instruction: Any) -> list[dict[str, Any]] | None:
    if instruction is None:
        return None
    parts = field_of(instruction, "parts")
    listed = items(parts) if parts is not None else items(instruction) or [instruction]
    return [content_part(part) for part in listed] or None


def tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    """Function declarations (and Python functions, for automatic function calling) as
    function definitions; Gemini's own tools (`google_search`, `code_execution`, ...) by
    their name."""
    definitions: list[dict[str, Any]] = []
    for tool in items(tools):
        if callable(tool):
            definitions.append(_callable_definition(tool))
            continue
        for declaration in items(field_of(tool, "function_declarations")):
            definitions.append(_declaration(declaration))
        for name, value in (_plain(tool) or {}).items():
            if name != "function_declarations" and value is not None:
                definitions.append({"type": name, "name": name})
    return definitions or None


def _declaration(declaration: Any) -> dict[str, Any]:
    definition: dict[str, Any] = {"type": "function", "name": field_of(declaration, "name")}
    description = field_of(declaration, "description")
    if description is not None:
        definition["description"] = description
    schema = field_of(declaration, "parameters_json_schema") or field_of(declaration, "parameters")
    if schema is not None:
        definition["parameters"] = _plain(schema)
    return definition


def _callable_definition(function: Any) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "type": "function",
        "name": getattr(function, "__name__", None) or type(function).__name__,
    }
    doc = getattr(function, "__doc__", None)
    if isinstance(doc, str) and doc.strip():
        definition["description"] = doc.strip()
    return definition


# -- response -----------------------------------------------------------------------------


def read_response(result: Any) -> LLMResponse:
    """An `LLMResponse` from a `GenerateContentResponse`."""
    candidates = [
        (
            field_of(candidate, "finish_reason"),
            items(field_of(field_of(candidate, "content"), "parts")),
        )
        for candidate in items(field_of(result, "candidates"))
    ]
    return response_from(
        response_id=text(field_of(result, "response_id")),
        model=text(field_of(result, "model_version")),
        candidates=candidates,
        usage=token_usage(field_of(result, "usage_metadata")),
        prompt_feedback=field_of(result, "prompt_feedback"),
    )


def token_usage(usage: Any) -> TokenUsage | None:
    """Gemini's usage metadata in the conventions' terms (see the module docstring)."""
    if usage is None:
        return None
    thoughts = count(field_of(usage, "thoughts_token_count"))
    return TokenUsage(
        input_tokens=count(field_of(usage, "prompt_token_count"))
        + count(field_of(usage, "tool_use_prompt_token_count")),
        output_tokens=count(field_of(usage, "candidates_token_count")) + thoughts,
        cache_read_tokens=count(field_of(usage, "cached_content_token_count")),
        reasoning_tokens=thoughts,
    )


def response_from(
    *,
    response_id: str | None,
    model: str | None,
    candidates: list[tuple[Any, Any]],  # (finish reason, parts) per candidate
    usage: TokenUsage | None,
    prompt_feedback: Any = None,
) -> LLMResponse:
    """The response that candidates' parts make, from a whole response or a stream.
    The application acts on the first candidate: its tool calls and texts are read."""
    finish_reasons = [r.lower() for r in (_name(f) for f, _ in candidates) if r]
    parts = list(candidates[0][1]) if candidates else []
    thoughts: list[str] = []
    texts: list[str] = []
    tool_calls: list[ToolCallRequest] = []
    for part in parts:
        part_text = text(field_of(part, "text"))
        if part_text is not None:
            (thoughts if field_of(part, "thought") is True else texts).append(part_text)
        call = field_of(part, "function_call")
        if call is not None:
            name = text(field_of(call, "name")) or ""
            tool_calls.append(
                ToolCallRequest(text(field_of(call, "id")), name, field_of(call, "args"))
            )
    reasoning = "".join(thoughts) or None
    response = LLMResponse(
        response_id=response_id,
        response_model=model,
        finish_reasons=finish_reasons,
        usage=usage,
        tool_calls=tool_calls,
        reasoning=reasoning,
        reasoning_source=sc.DecisionReasoningSourceValues.REASONING_SUMMARY if reasoning else None,
        text="".join(texts) or None,
    )
    block_reason = _name(field_of(prompt_feedback, "block_reason"))
    if block_reason and not candidates:
        message = text(field_of(prompt_feedback, "block_reason_message"))
        response.error_type = PROMPT_BLOCKED
        response.error_message = f"{block_reason}: {message}" if message else block_reason
    if _capturing_content():
        response.output_messages = [
            _output_message(finish_reason, candidate_parts)
            for finish_reason, candidate_parts in candidates
        ]
    return response


def _output_message(finish_reason: Any, parts: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "parts": [content_part(part) for part in items(list(parts))],
    }
    reason = _name(finish_reason)
    if reason:
        message["finish_reason"] = reason.lower()
    return message


class StreamAccumulator:
    """Folds streamed `GenerateContentResponse` chunks into one response.

    Each chunk holds the new parts of each candidate; texts are joined (thought summaries
    apart from visible text), function calls arrive whole. Usage comes with the chunks and
    is final with the one that brings a finish reason: a stream closed before it has no
    known output count."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._model: str | None = None
        self._usage: Any = None
        self._prompt_feedback: Any = None
        self._finish: dict[int, Any] = {}
        self._parts: dict[int, list[dict[str, Any]]] = {}

    def add(self, chunk: Any) -> None:
        self._id = text(field_of(chunk, "response_id")) or self._id
        self._model = text(field_of(chunk, "model_version")) or self._model
        self._usage = field_of(chunk, "usage_metadata") or self._usage
        self._prompt_feedback = field_of(chunk, "prompt_feedback") or self._prompt_feedback
        for position, candidate in enumerate(items(field_of(chunk, "candidates"))):
            index = integer(field_of(candidate, "index")) or position
            parts = self._parts.setdefault(index, [])
            for part in items(field_of(field_of(candidate, "content"), "parts")):
                _merge_part(parts, part)
            reason = field_of(candidate, "finish_reason")
            if reason is not None:
                self._finish[index] = reason

    def response(self) -> LLMResponse:
        indexes = sorted(set(self._parts) | set(self._finish))
        response = response_from(
            response_id=self._id,
            model=self._model,
            candidates=[(self._finish.get(i), self._parts.get(i, [])) for i in indexes],
            usage=token_usage(self._usage),
            prompt_feedback=self._prompt_feedback,
        )
        response.output_tokens_known = bool(self._finish)
        return response


def _merge_part(parts: list[dict[str, Any]], part: Any) -> None:
    """Extend the last text of the same kind, else keep the part (as plain fields)."""
    piece = text(field_of(part, "text"))
    thought = field_of(part, "thought") is True
    if piece is not None and parts:
        last = parts[-1]
        if isinstance(last.get("text"), str) and (last.get("thought") is True) == thought:
            last["text"] += piece
            return
    if piece is not None:
        parts.append({"text": piece, "thought": thought})
    else:
        parts.append({k: field_of(part, k) for k in _PART_FIELDS if field_of(part, k) is not None})


CONTENT = Readers(read_request, read_response)
STREAM = Readers(read_stream_request, read_response, new_accumulator=StreamAccumulator)
_MODELS = "google.genai.models"
HOOKS = (
    Hook(_MODELS, "Models._generate_content", CONTENT),
    Hook(_MODELS, "Models._generate_content_stream", STREAM),
    Hook(_MODELS, "AsyncModels._generate_content", CONTENT),
    Hook(_MODELS, "AsyncModels._generate_content_stream", STREAM),
)
ADAPTER = ClientAdapter("google-genai", HOOKS)
patch, unpatch = ADAPTER.functions()

__all__ = [
    "HOOKS",
    "StreamAccumulator",
    "patch",
    "read_request",
    "read_response",
    "read_stream_request",
    "token_usage",
    "unpatch",
]
