"""Auto-instrumentation of Amazon Bedrock through `boto3`: the `bedrock-runtime` Converse and
ConverseStream APIs.

Every boto3 client call goes through `botocore.client.BaseClient._make_api_call(operation,
params)`; one hook there routes the `bedrock-runtime` client's `Converse` / `ConverseStream`
operations to the readers below and lets every other call (S3, `InvokeModel`, ...) through
untouched. This module only says how to read a request, a response and the stream events:

- `modelId` is recorded as given (a model id, a cross-region inference profile such as
  `us.anthropic.claude-...`, or an ARN); genai-prices (provider `aws`) prices all three;
- `reasoningContent` blocks are the reasoning behind the `toolUse` blocks of the same
  message (source `thinking`); `redactedContent` is encrypted: a `reasoning` part whose
  content is `[redacted]`, never the opaque bytes;
- usage follows the GenAI conventions: `gen_ai.usage.input_tokens` is Bedrock's
  `inputTokens + cacheReadInputTokens + cacheWriteInputTokens`;
- `stopReason` values (`end_turn`, `tool_use`, `max_tokens`, ...) are kept as they are;
- `ResponseMetadata.RetryAttempts` (botocore's own retries) gives `otel_agents.llm.attempts`;
- `error.type` is the API's error code (`ThrottlingException`, `ValidationException`, a
  streamed `modelStreamErrorException` as `ModelStreamErrorException`), as the conventions
  prefer to the exception's class (`botocore.errorfactory.ThrottlingException`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.util.types import AttributeValue

from otel_agents import semconv as sc
from otel_agents.adapters.fields import count, integer, items, number, text
from otel_agents.adapters.kit import ClientAdapter, Hook, Readers, StreamSlot, finish_with
from otel_agents.core.inference import LLMCall, LLMRequest, LLMResponse, ToolCallRequest
from otel_agents.pricing import TokenUsage
from otel_agents.runtime import get_runtime

PROVIDER = sc.GenAiProviderNameValues.AWS_BEDROCK
SERVICE = "bedrock-runtime"
CONVERSE, CONVERSE_STREAM = "Converse", "ConverseStream"
REDACTED_REASONING = "[redacted]"


def _capturing_content() -> bool:
    return get_runtime().settings.capture_content.enabled


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# -- request ------------------------------------------------------------------------------


def _call_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Mapping[str, Any]]:
    """(operation name, API parameters) of `_make_api_call(operation_name, api_params)`."""
    operation = args[0] if args else kwargs.get("operation_name")
    params = args[1] if len(args) > 1 else kwargs.get("api_params")
    return operation, _mapping(params)


def service_of(client: Any) -> str | None:
    model = getattr(getattr(client, "meta", None), "service_model", None)
    return text(getattr(model, "service_name", None))


def server_of(client: Any) -> tuple[str | None, int | None]:
    """`server.address` / `server.port` from the client's endpoint URL."""
    url = text(getattr(getattr(client, "meta", None), "endpoint_url", None))
    if not url:
        return None, None
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.hostname, port


def read_request(client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> LLMRequest | None:
    """An `LLMRequest` from a Converse / ConverseStream call's parameters."""
    operation, params = _call_of(args, kwargs)
    if operation not in (CONVERSE, CONVERSE_STREAM):
        return None
    address, port = server_of(client)
    request = LLMRequest(
        provider=PROVIDER,
        model=text(params.get("modelId")),
        operation=sc.GenAiOperationNameValues.CHAT,
        stream=operation == CONVERSE_STREAM,
        server_address=address,
        server_port=port,
        parameters=request_parameters(params.get("inferenceConfig")),
    )
    if _capturing_content():
        request.input_messages = [input_message(m) for m in items(params.get("messages"))]
        system = [content_part(block) for block in items(params.get("system"))]
        request.system_instructions = system or None
        request.tool_definitions = tool_definitions(params.get("toolConfig"))
    return request


def request_parameters(config: Any) -> dict[str, AttributeValue]:
    """The `gen_ai.request.*` attributes an `inferenceConfig` sets."""
    config = _mapping(config)
    parameters: dict[str, AttributeValue] = {}
    max_tokens = integer(config.get("maxTokens"))
    if max_tokens is not None:
        parameters[sc.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    for key, attribute in (
        ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE),
        ("topP", sc.GEN_AI_REQUEST_TOP_P),
    ):
        value = number(config.get(key))
        if value is not None:
            parameters[attribute] = value
    stops = [s for s in items(config.get("stopSequences")) if isinstance(s, str)]
    if stops:
        parameters[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = stops
    return parameters


def tool_definitions(tool_config: Any) -> list[dict[str, Any]] | None:
    """`toolConfig.tools[].toolSpec` as the conventions' function definitions."""
    definitions: list[dict[str, Any]] = []
    for tool in items(_mapping(tool_config).get("tools")):
        spec = _mapping(_mapping(tool).get("toolSpec"))
        if not spec:
            continue
        definition: dict[str, Any] = {"type": "function", "name": text(spec.get("name")) or ""}
        if "description" in spec:
            definition["description"] = spec["description"]
        schema = _mapping(spec.get("inputSchema")).get("json")
        if schema is not None:
            definition["parameters"] = schema
        definitions.append(definition)
    return definitions or None


def input_message(message: Any) -> dict[str, Any]:
    message = _mapping(message)
    return {
        "role": text(message.get("role")) or "user",
        "parts": [content_part(block) for block in items(message.get("content"))],
    }


def content_part(block: Any) -> dict[str, Any]:
    """One Converse content block (a one-key union), of a request or a response, as a
    conventions' part. Binary payloads (images, documents) are never copied."""
    block = _mapping(block)
    if "text" in block:
        return {"type": "text", "content": text(block["text"]) or ""}
    if "reasoningContent" in block:
        reasoning = _mapping(block["reasoningContent"])
        if "redactedContent" in reasoning:
            return {"type": "reasoning", "content": REDACTED_REASONING, "redacted": True}
        thought = _mapping(reasoning.get("reasoningText")).get("text")
        return {"type": "reasoning", "content": text(thought) or ""}
    if "toolUse" in block:
        use = _mapping(block["toolUse"])
        return {
            "type": "tool_call",
            "id": text(use.get("toolUseId")),
            "name": text(use.get("name")) or "",
            "arguments": use.get("input"),
        }
    if "toolResult" in block:
        result = _mapping(block["toolResult"])
        return {
            "type": "tool_call_response",
            "id": text(result.get("toolUseId")),
            "response": [_result_part(part) for part in items(result.get("content"))],
        }
    return {"type": next(iter(block), "unknown")}  # image, document, video, cachePoint, ...


def _result_part(part: Any) -> Any:
    part = _mapping(part)
    if "json" in part:
        return part["json"]
    return content_part(part)


# -- response -----------------------------------------------------------------------------


def read_response(result: Any) -> LLMResponse:
    """An `LLMResponse` from a Converse response dict."""
    result = _mapping(result)
    message = _mapping(_mapping(result.get("output")).get("message"))
    return response_from(
        blocks=items(message.get("content")),
        stop_reason=text(result.get("stopReason")),
        usage=token_usage(result.get("usage")),
    )


def token_usage(usage: Any) -> TokenUsage | None:
    """Bedrock usage in GenAI terms: input tokens include cache reads and writes."""
    if not isinstance(usage, Mapping):
        return None
    cache_read = count(usage.get("cacheReadInputTokens"))
    cache_write = count(usage.get("cacheWriteInputTokens"))
    return TokenUsage(
        input_tokens=count(usage.get("inputTokens")) + cache_read + cache_write,
        output_tokens=count(usage.get("outputTokens")),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def response_from(
    *, blocks: Sequence[Any], stop_reason: str | None, usage: TokenUsage | None
) -> LLMResponse:
    """The response a message's content blocks make, from a whole response or a stream."""
    texts: list[str] = []
    thoughts: list[str] = []
    tool_calls: list[ToolCallRequest] = []
    for block in map(_mapping, blocks):
        if "text" in block:
            texts.append(text(block["text"]) or "")
        elif "reasoningContent" in block:
            thought = _mapping(_mapping(block["reasoningContent"]).get("reasoningText"))
            thoughts.append(text(thought.get("text")) or "")
        elif "toolUse" in block:
            use = _mapping(block["toolUse"])
            name = text(use.get("name")) or ""
            tool_calls.append(ToolCallRequest(text(use.get("toolUseId")), name, use.get("input")))
    reasoning = "\n\n".join(t for t in thoughts if t) or None
    response = LLMResponse(
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


class EventAccumulator:
    """Folds ConverseStream events into an `LLMResponse`.

    `contentBlockStart` opens a tool use (id, name); `contentBlockDelta` grows a block by
    text, reasoning text or pieces of the tool input's JSON; `messageStop` brings the stop
    reason and `metadata` the usage. A stream cut short still gives what arrived.
    """

    def __init__(self) -> None:
        self._starts: dict[int, Mapping[str, Any]] = {}
        self._pieces: dict[tuple[int, str], list[str]] = {}  # (block, kind) -> pieces
        self._redacted: set[int] = set()
        self._stop_reason: str | None = None
        self._usage: Any = None

    def add(self, event: Any) -> None:
        if not isinstance(event, Mapping):
            return
        if "contentBlockDelta" in event:
            self._delta(_mapping(event["contentBlockDelta"]))
        elif "contentBlockStart" in event:
            start = _mapping(event["contentBlockStart"])
            self._starts[count(start.get("contentBlockIndex"))] = _mapping(start.get("start"))
        elif "messageStop" in event:
            self._stop_reason = text(_mapping(event["messageStop"]).get("stopReason"))
        elif "metadata" in event:
            self._usage = _mapping(event["metadata"]).get("usage")

    def _delta(self, event: Mapping[str, Any]) -> None:
        index = count(event.get("contentBlockIndex"))
        delta = _mapping(event.get("delta"))
        if "text" in delta:
            self._piece(index, "text", delta["text"])
        elif "toolUse" in delta:
            self._piece(index, "toolUse", _mapping(delta["toolUse"]).get("input"))
        elif "reasoningContent" in delta:
            reasoning = _mapping(delta["reasoningContent"])
            if "redactedContent" in reasoning:
                self._redacted.add(index)
            self._piece(index, "reasoningContent", reasoning.get("text"))

    def _piece(self, index: int, kind: str, piece: Any) -> None:
        if isinstance(piece, str):
            self._pieces.setdefault((index, kind), []).append(piece)

    def response(self) -> LLMResponse:
        indexes = sorted({i for i, _ in self._pieces} | set(self._starts) | self._redacted)
        response = response_from(
            blocks=[self._block(i) for i in indexes],
            stop_reason=self._stop_reason,
            usage=token_usage(self._usage),
        )
        response.output_tokens_known = self._usage is not None
        return response

    def _block(self, index: int) -> dict[str, Any]:
        """Block `index` in the shape of a whole response's content block."""
        tool = _mapping(self._starts.get(index, {}).get("toolUse"))
        if tool:
            joined = "".join(self._pieces.get((index, "toolUse"), []))
            try:
                arguments: Any = json.loads(joined) if joined else {}
            except ValueError:
                arguments = joined  # cut off mid-arguments: keep what arrived
            return {"toolUse": {**tool, "input": arguments}}
        thought = self._pieces.get((index, "reasoningContent"))
        if index in self._redacted and not thought:
            return {"reasoningContent": {"redactedContent": b""}}
        if thought is not None:
            return {"reasoningContent": {"reasoningText": {"text": "".join(thought)}}}
        return {"text": "".join(self._pieces.get((index, "text"), []))}


def error_code(exc: BaseException) -> str | None:
    """The API's error code as `error.type`: `ThrottlingException`, `ValidationException`.
    botocore's `ClientError` carries it; a streamed error event (`EventStreamError`) names it
    in lowerCamelCase (`throttlingException`), spelled here as the same code."""
    response = getattr(exc, "response", None)
    code = text(_mapping(_mapping(response).get("Error")).get("Code"))
    return code[:1].upper() + code[1:] if code else None


# -- the hook -----------------------------------------------------------------------------


def _attempts(result: Any) -> int | None:
    retries = integer(_mapping(_mapping(result).get("ResponseMetadata")).get("RetryAttempts"))
    return retries + 1 if retries is not None else None


def handle_result(result: Any, call: LLMCall, readers: Readers) -> Any:
    """Botocore's own retries as `otel_agents.llm.attempts`, then the kit's default."""
    attempts = _attempts(result)
    if attempts is not None:
        call.attempts = attempts
    return finish_with(result, call, readers)


def _put_stream(result: Any, stream: Any) -> Any:
    result["stream"] = stream  # the same dict, its same keys: only the stream is wrapped
    return result


STREAM_SLOT = StreamSlot(
    get=lambda result: result.get("stream") if isinstance(result, dict) else None,
    put=_put_stream,
)
CONVERSE_READERS = Readers(
    read_request, read_response, handle_result=handle_result, error_type=error_code
)
STREAM_READERS = Readers(
    read_request,
    read_response,
    new_accumulator=EventAccumulator,
    stream_slot=STREAM_SLOT,
    handle_result=handle_result,
    error_type=error_code,
)
_READERS = {CONVERSE: CONVERSE_READERS, CONVERSE_STREAM: STREAM_READERS}


def route(client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Readers | None:
    """Readers for the `bedrock-runtime` Converse operations; None (untouched) otherwise."""
    if service_of(client) != SERVICE:
        return None
    operation, _ = _call_of(args, kwargs)
    return _READERS.get(operation) if isinstance(operation, str) else None


HOOKS = (Hook("botocore.client", "BaseClient._make_api_call", route=route),)
patch, unpatch = ClientAdapter("boto3", HOOKS).functions()

__all__ = [
    "HOOKS",
    "EventAccumulator",
    "patch",
    "read_request",
    "read_response",
    "route",
    "unpatch",
]
