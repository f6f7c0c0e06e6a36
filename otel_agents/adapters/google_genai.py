"""The `google-genai` SDK (the Gemini API and Vertex AI) on the adapter kit.

Hooked where each model call happens: `Models._generate_content` and
`_generate_content_stream` (and their `AsyncModels` twins). The public `generate_content`
loops over them for automatic function calling (the SDK runs your Python tools and calls the
model again) and for continuations, so each model call gets its own `chat {model}` span.

What is read, in GenAI-convention terms:

- provider `gcp.gemini` for the Gemini API (AI Studio) and `gcp.vertex_ai` for Vertex AI,
  told by the client; `server.address`/`port` from its base URL;
- `function_call` parts are the tool calls the model asked for (`id` when the API gives
  one); parts marked `thought` are thought summaries: the reasoning behind those calls;
- usage: `gen_ai.usage.input_tokens` is `prompt_token_count` (which already counts cached
  content), cache reads are `cached_content_token_count`; output tokens are
  `candidates_token_count + thoughts_token_count` (thinking is billed as output, as
  OpenAI's reasoning tokens are), reasoning tokens are `thoughts_token_count`;
- finish reasons lower-cased (`stop`, `max_tokens`, `safety`, ...); a prompt blocked by
  the API (`prompt_feedback.block_reason`) is a failed call although no exception is raised.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.util.types import AttributeValue

from otel_agents import semconv as sc
from otel_agents.adapters.fields import (
    Parameter,
    count,
    field_of,
    integer,
    items,
    number,
    read_parameters,
    server_of_url,
    strings,
    text,
)
from otel_agents.adapters.kit import ClientAdapter, Hook, Readers
from otel_agents.core.inference import LLMRequest, LLMResponse
from otel_agents.core.requests import ToolCallRequest
from otel_agents.pricing import TokenUsage
from otel_agents.runtime import get_runtime

_MODULE = "google.genai.models"
_JSON_MIME_TYPES = ("application/json", "text/x.enum")


def _capturing() -> bool:
    return get_runtime().settings.capture_content.enabled


# -- requests ----------------------------------------------------------------------------------


def read_request(models: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> LLMRequest:
    """`_generate_content(model=, contents=, config=)` on a `Models` / `AsyncModels`."""
    client = getattr(models, "_api_client", None)
    config = kwargs.get("config")
    address, port = _server(client)
    request = LLMRequest(
        provider=_provider(client),
        model=_model_name(text(kwargs.get("model"))),
        operation=sc.GenAiOperationNameValues.CHAT,
        server_address=address,
        server_port=port,
        parameters=request_parameters(config),
    )
    if _capturing():
        request.input_messages = [input_message(c) for c in _contents(kwargs.get("contents"))]
        request.system_instructions = _system_instructions(field_of(config, "system_instruction"))
        request.tool_definitions = tool_definitions(field_of(config, "tools"))
    return request


def read_stream_request(models: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> LLMRequest:
    request = read_request(models, args, kwargs)
    request.stream = True
    return request


def _provider(client: Any) -> str:
    if getattr(client, "vertexai", False):
        return sc.GenAiProviderNameValues.GCP_VERTEX_AI
    return sc.GenAiProviderNameValues.GCP_GEMINI


def _server(client: Any) -> tuple[str | None, int | None]:
    return server_of_url(text(field_of(getattr(client, "_http_options", None), "base_url")))


def _model_name(model: str | None) -> str | None:
    """`models/gemini-2.5-flash` and Vertex resource names as the bare model name."""
    if model and "/" in model:
        return model.rsplit("/", 1)[-1]
    return model


def _whole(value: Any) -> int | None:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return integer(value)


_PARAMETERS: tuple[Parameter, ...] = (
    ("max_output_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS, _whole),
    ("top_k", sc.GEN_AI_REQUEST_TOP_K, _whole),  # a float in the SDK, an int in the conventions
    ("candidate_count", sc.GEN_AI_REQUEST_CHOICE_COUNT, _whole),
    ("seed", sc.GEN_AI_REQUEST_SEED, _whole),
    ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE, number),
    ("top_p", sc.GEN_AI_REQUEST_TOP_P, number),
    ("presence_penalty", sc.GEN_AI_REQUEST_PRESENCE_PENALTY, number),
    ("frequency_penalty", sc.GEN_AI_REQUEST_FREQUENCY_PENALTY, number),
    ("stop_sequences", sc.GEN_AI_REQUEST_STOP_SEQUENCES, strings),
)


def request_parameters(config: Any) -> dict[str, AttributeValue]:
    """The `gen_ai.request.*` attributes a `GenerateContentConfig` (or dict) sets."""
    parameters = read_parameters(config, _PARAMETERS)
    mime = text(field_of(config, "response_mime_type"))
    if mime in _JSON_MIME_TYPES or field_of(config, "response_schema") is not None:
        parameters[sc.GEN_AI_OUTPUT_TYPE] = sc.GenAiOutputTypeValues.JSON
    level = field_of(field_of(config, "thinking_config"), "thinking_level")
    if level is not None:
        parameters[sc.GEN_AI_REQUEST_REASONING_LEVEL] = str(getattr(level, "value", level)).lower()
    return parameters


def _contents(contents: Any) -> list[Any]:
    """`contents` as the SDK accepts it (a string, a part, a content, or a list of them)."""
    if contents is None:
        return []
    if isinstance(contents, (str, dict)) or not isinstance(contents, (list, tuple)):
        return [contents]
    return list(contents)


def input_message(content: Any) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "user", "parts": [{"type": "text", "content": content}]}
    parts = field_of(content, "parts")
    if parts is None:  # a bare part
        return {"role": "user", "parts": [content_part(content)]}
    role = text(field_of(content, "role")) or "user"
    return {"role": "assistant" if role == "model" else role, "parts": content_parts(parts)}


def _system_instructions(system: Any) -> list[dict[str, Any]] | None:
    if system is None:
        return None
    if isinstance(system, str):
        return [{"type": "text", "content": system}]
    parts = field_of(system, "parts")
    return content_parts(parts if parts is not None else [system])


def tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    """Function declarations as the conventions' tool definitions; Gemini's built-in tools
    (Google Search, code execution, ...) by their kind."""
    definitions: list[dict[str, Any]] = []
    for tool in items(tools):
        if callable(tool) and not hasattr(tool, "function_declarations"):
            definitions.append({"type": "function", "name": getattr(tool, "__name__", "?")})
            continue
        declarations = items(field_of(tool, "function_declarations"))
        for declaration in declarations:
            definition: dict[str, Any] = {
                "type": "function",
                "name": text(field_of(declaration, "name")) or "",
            }
            description = text(field_of(declaration, "description"))
            if description:
                definition["description"] = description
            schema = field_of(declaration, "parameters_json_schema") or field_of(
                declaration, "parameters"
            )
            if schema is not None:
                definition["parameters"] = _plain(schema)
            definitions.append(definition)
        if not declarations:
            kinds = [k for k, v in _plain(tool).items() if v is not None] if tool else []
            definitions.extend({"type": kind} for kind in kinds)
    return definitions or None


def content_parts(parts: Any) -> list[dict[str, Any]]:
    return [content_part(part) for part in items(parts)]


def content_part(part: Any) -> dict[str, Any]:
    """A `Part` in the conventions' JSON shape."""
    if isinstance(part, str):
        return {"type": "text", "content": part}
    call = field_of(part, "function_call")
    if call is not None:
        return {
            "type": "tool_call",
            "id": text(field_of(call, "id")),
            "name": text(field_of(call, "name")) or "",
            "arguments": _plain(field_of(call, "args")),
        }
    answer = field_of(part, "function_response")
    if answer is not None:
        return {
            "type": "tool_call_response",
            "id": text(field_of(answer, "id")),
            "response": _plain(field_of(answer, "response")),
        }
    content = text(field_of(part, "text"))
    if content is not None:
        kind = "reasoning" if field_of(part, "thought") is True else "text"
        return {"type": kind, "content": content}
    return _media_part(part)


def _media_part(part: Any) -> dict[str, Any]:
    """Inline bytes as a blob (its content is the SDK's, scrubbed and truncated like all
    captured content), a file URI as a uri part."""
    inline, linked = field_of(part, "inline_data"), field_of(part, "file_data")
    data = inline if inline is not None else linked
    mime = text(field_of(data, "mime_type"))
    modality = mime.split("/", 1)[0] if mime else "unknown"
    if inline is not None:
        return {
            "type": "blob",
            "modality": modality,
            "mime_type": mime,
            "content": field_of(inline, "data"),
        }
    if linked is not None:
        return {
            "type": "uri",
            "modality": modality,
            "mime_type": mime,
            "uri": text(field_of(linked, "file_uri")),
        }
    return {"type": "unknown"}


def _plain(value: Any, depth: int = 0) -> Any:
    """SDK models as plain data (for captured content)."""
    if depth > 16:
        return None
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        value = dump(exclude_none=True, mode="json")
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    return value


# -- responses ---------------------------------------------------------------------------------


def read_response(response: Any) -> LLMResponse:
    """An `LLMResponse` from a `GenerateContentResponse`."""
    candidates = items(field_of(response, "candidates"))
    parts = items(field_of(field_of(candidates[0], "content"), "parts")) if candidates else []
    reasons = [_finish_reason(field_of(c, "finish_reason")) for c in candidates]
    result = response_from(
        response_id=text(field_of(response, "response_id")),
        model=text(field_of(response, "model_version")),
        finish_reasons=[r for r in reasons if r],
        usage=token_usage(field_of(response, "usage_metadata")),
        parts=parts,
    )
    blocked = field_of(field_of(response, "prompt_feedback"), "block_reason")
    if blocked is not None:
        reason = str(getattr(blocked, "value", blocked)).lower()
        result.error_type = "blocked"
        result.error_message = f"the prompt was blocked: {reason}"
    return result


def _finish_reason(reason: Any) -> str | None:
    if reason is None:
        return None
    value = str(getattr(reason, "value", reason))
    return value.lower() if value else None


def token_usage(usage: Any) -> TokenUsage | None:
    if usage is None:
        return None
    thoughts = count(field_of(usage, "thoughts_token_count"))
    return TokenUsage(
        input_tokens=count(field_of(usage, "prompt_token_count")),
        output_tokens=count(field_of(usage, "candidates_token_count")) + thoughts,
        cache_read_tokens=count(field_of(usage, "cached_content_token_count")),
        reasoning_tokens=thoughts,
    )


def response_from(
    *,
    response_id: str | None,
    model: str | None,
    finish_reasons: list[str],
    usage: TokenUsage | None,
    parts: Iterable[Any],
) -> LLMResponse:
    """The response a candidate's parts make, from a whole response or a stream."""
    parts = list(parts)
    thoughts: list[str] = []
    texts: list[str] = []
    tool_calls: list[ToolCallRequest] = []
    for part in parts:
        call = field_of(part, "function_call")
        if call is not None:
            name = text(field_of(call, "name")) or ""
            tool_calls.append(
                ToolCallRequest(text(field_of(call, "id")), name, _plain(field_of(call, "args")))
            )
            continue
        content = text(field_of(part, "text"))
        if content:
            (thoughts if field_of(part, "thought") is True else texts).append(content)
    reasoning = "\n\n".join(thoughts) or None
    result = LLMResponse(
        response_id=response_id,
        response_model=model,
        finish_reasons=finish_reasons,
        usage=usage,
        tool_calls=tool_calls,
        reasoning=reasoning,
        reasoning_source=sc.DecisionReasoningSourceValues.REASONING_SUMMARY if reasoning else None,
        text="".join(texts) or None,
    )
    if _capturing():
        message: dict[str, Any] = {"role": "assistant", "parts": content_parts(parts)}
        finish = "tool_call" if tool_calls else (finish_reasons[0] if finish_reasons else None)
        if finish:
            message["finish_reason"] = finish
        result.output_messages = [message]
    return result


class ChunkAccumulator:
    """Folds streamed `GenerateContentResponse` chunks: parts are appended (text deltas
    joined into one part), and the last chunk's finish reason and usage win."""

    def __init__(self) -> None:
        self.parts: list[Any] = []
        self.last: Any = None
        self.reasons: list[str] = []

    def add(self, chunk: Any) -> None:
        self.last = chunk
        for candidate in items(field_of(chunk, "candidates"))[:1]:
            self.parts.extend(items(field_of(field_of(candidate, "content"), "parts")))
            reason = _finish_reason(field_of(candidate, "finish_reason"))
            if reason:
                self.reasons = [reason]

    def response(self) -> LLMResponse:
        last = self.last
        result = response_from(
            response_id=text(field_of(last, "response_id")),
            model=text(field_of(last, "model_version")),
            finish_reasons=self.reasons,
            usage=token_usage(field_of(last, "usage_metadata")),
            parts=_joined(self.parts),
        )
        # Chunks before the last carry the prompt count only: the output count is final
        # with the chunk that brings the finish reason, and a stream closed before it
        # never got it (neither reported nor priced as 0).
        result.output_tokens_known = bool(self.reasons)
        return result


def _joined(parts: list[Any]) -> list[Any]:
    """Consecutive text deltas of the same kind (thought or not) as one text part."""
    joined: list[Any] = []
    for part in parts:
        content = text(field_of(part, "text"))
        thought = field_of(part, "thought") is True
        previous = joined[-1] if joined else None
        if content is not None and isinstance(previous, dict) and previous["thought"] is thought:
            previous["text"] += content
        elif content is not None:
            joined.append({"text": content, "thought": thought})
        else:
            joined.append(part)
    return joined


# -- hooks -------------------------------------------------------------------------------------

CALL = Readers(read_request, read_response)
STREAM = Readers(read_stream_request, read_response, new_accumulator=ChunkAccumulator)
HOOKS = (
    Hook(_MODULE, "Models._generate_content", CALL),
    Hook(_MODULE, "Models._generate_content_stream", STREAM),
    Hook(_MODULE, "AsyncModels._generate_content", CALL),
    Hook(_MODULE, "AsyncModels._generate_content_stream", STREAM),
)
patch, unpatch = ClientAdapter("google-genai", HOOKS).functions()
