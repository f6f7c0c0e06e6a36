"""Amazon Bedrock's Converse and ConverseStream APIs (`boto3` / `botocore`) on the adapter kit.

botocore sends every AWS operation through one method, `BaseClient._make_api_call(
operation_name, api_params)`; the hook's route picks `Converse` and `ConverseStream` of the
`bedrock-runtime` service and lets every other call through untouched. ConverseStream
returns a dict whose `"stream"` is an `EventStream`: the kit wraps it in place (same dict,
same events), and the span ends with the stream.

What is read, in GenAI-convention terms:

- provider `aws.bedrock`; `server.address`/`port` from the client's endpoint URL; the model
  as the application named it (a model id, a cross-region inference profile such as
  `us.anthropic.claude-...`, or an ARN), which is also what it is priced by;
- `toolUse` blocks are the tool calls the model asked for (`toolUseId` as the call id);
  `reasoningContent` text is the reasoning behind them (redacted reasoning shows as
  `[redacted]` in captured content and gives no reasoning text);
- usage: `gen_ai.usage.input_tokens` is `inputTokens + cacheReadInputTokens +
  cacheWriteInputTokens`, as the conventions count input; cache reads and writes apart;
- `stopReason` values (`end_turn`, `tool_use`, `max_tokens`, ...) kept as they are;
- botocore's own retries (`ResponseMetadata.RetryAttempts`) give `otel_agents.llm.attempts`;
- `error.type` is the API's error code (`ThrottlingException`, `ValidationException`; a
  streamed `throttlingException` event spelled the same), as the conventions prefer.
"""

from __future__ import annotations

import json
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
from otel_agents.adapters.kit import ClientAdapter, Hook, Readers, StreamSlot, finish_with
from otel_agents.core.inference import LLMCall, LLMRequest, LLMResponse
from otel_agents.core.requests import ToolCallRequest
from otel_agents.pricing import TokenUsage
from otel_agents.runtime import get_runtime

SERVICE = "bedrock-runtime"
REDACTED_REASONING = "[redacted]"


def _capturing() -> bool:
    return get_runtime().settings.capture_content.enabled


# -- requests ----------------------------------------------------------------------------------


def read_request(client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> LLMRequest:
    """`_make_api_call("Converse" | "ConverseStream", params)` on a bedrock-runtime client."""
    operation, params = _operation(args, kwargs)
    address, port = _server(client)
    request = LLMRequest(
        provider=sc.GenAiProviderNameValues.AWS_BEDROCK,
        model=text(field_of(params, "modelId")),
        operation=sc.GenAiOperationNameValues.CHAT,
        stream=operation == "ConverseStream",
        server_address=address,
        server_port=port,
        parameters=request_parameters(field_of(params, "inferenceConfig")),
    )
    if _capturing():
        request.input_messages = [_message(m) for m in items(field_of(params, "messages"))]
        request.system_instructions = _content(field_of(params, "system")) or None
        request.tool_definitions = tool_definitions(field_of(params, "toolConfig"))
    return request


def _operation(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str | None, Any]:
    operation = args[0] if args else kwargs.get("operation_name")
    params = args[1] if len(args) > 1 else kwargs.get("api_params")
    return (operation if isinstance(operation, str) else None), params


def _server(client: Any) -> tuple[str | None, int | None]:
    return server_of_url(text(getattr(getattr(client, "meta", None), "endpoint_url", None)))


_PARAMETERS: tuple[Parameter, ...] = (
    ("maxTokens", sc.GEN_AI_REQUEST_MAX_TOKENS, integer),
    ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE, number),
    ("topP", sc.GEN_AI_REQUEST_TOP_P, number),
    ("stopSequences", sc.GEN_AI_REQUEST_STOP_SEQUENCES, strings),
)


def request_parameters(config: Any) -> dict[str, AttributeValue]:
    """The `gen_ai.request.*` attributes of `inferenceConfig`."""
    return read_parameters(config, _PARAMETERS)


def tool_definitions(tool_config: Any) -> list[dict[str, Any]] | None:
    definitions: list[dict[str, Any]] = []
    for tool in items(field_of(tool_config, "tools")):
        spec = field_of(tool, "toolSpec")
        if spec is None:
            continue
        definition: dict[str, Any] = {"type": "function", "name": text(field_of(spec, "name"))}
        description = text(field_of(spec, "description"))
        if description:
            definition["description"] = description
        schema = field_of(field_of(spec, "inputSchema"), "json")
        if schema is not None:
            definition["parameters"] = schema
        definitions.append(definition)
    return definitions or None


def _message(message: Any) -> dict[str, Any]:
    return {
        "role": text(field_of(message, "role")) or "user",
        "parts": _content(field_of(message, "content")),
    }


def _content(blocks: Any) -> list[dict[str, Any]]:
    return [content_part(block) for block in items(blocks)]


def content_part(block: Any) -> dict[str, Any]:
    """A Converse content block in the conventions' JSON shape."""
    if field_of(block, "text") is not None:
        return {"type": "text", "content": text(field_of(block, "text"))}
    use = field_of(block, "toolUse")
    if use is not None:
        return {
            "type": "tool_call",
            "id": text(field_of(use, "toolUseId")),
            "name": text(field_of(use, "name")) or "",
            "arguments": field_of(use, "input"),
        }
    result = field_of(block, "toolResult")
    if result is not None:
        return {
            "type": "tool_call_response",
            "id": text(field_of(result, "toolUseId")),
            "response": field_of(result, "content"),
        }
    reasoning = field_of(block, "reasoningContent")
    if reasoning is not None:
        said = text(field_of(field_of(reasoning, "reasoningText"), "text"))
        if said is None:
            return {"type": "reasoning", "content": REDACTED_REASONING, "redacted": True}
        return {"type": "reasoning", "content": said}
    for kind in ("image", "document", "video"):
        media = field_of(block, kind)
        if media is not None:
            return {"type": "blob", "modality": kind, "mime_type": text(field_of(media, "format"))}
    return {"type": "unknown"}


# -- responses ---------------------------------------------------------------------------------


def read_response(result: Any) -> LLMResponse:
    """An `LLMResponse` from a Converse result (or a stream folded into that shape)."""
    blocks = items(field_of(field_of(field_of(result, "output"), "message"), "content"))
    stop_reason = text(field_of(result, "stopReason"))
    return response_from(stop_reason, token_usage(field_of(result, "usage")), blocks)


def token_usage(usage: Any) -> TokenUsage | None:
    if usage is None:
        return None
    cache_read = count(field_of(usage, "cacheReadInputTokens"))
    cache_write = count(field_of(usage, "cacheWriteInputTokens"))
    return TokenUsage(
        input_tokens=count(field_of(usage, "inputTokens")) + cache_read + cache_write,
        output_tokens=count(field_of(usage, "outputTokens")),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def response_from(
    stop_reason: str | None, usage: TokenUsage | None, blocks: Iterable[Any]
) -> LLMResponse:
    blocks = list(blocks)
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCallRequest] = []
    for block in blocks:
        said = text(field_of(block, "text"))
        if said is not None:
            texts.append(said)
        use = field_of(block, "toolUse")
        if use is not None:
            name = text(field_of(use, "name")) or ""
            calls.append(
                ToolCallRequest(text(field_of(use, "toolUseId")), name, field_of(use, "input"))
            )
        thought = text(
            field_of(field_of(field_of(block, "reasoningContent"), "reasoningText"), "text")
        )
        if thought:
            thoughts.append(thought)
    reasoning = "\n\n".join(thoughts) or None
    response = LLMResponse(
        finish_reasons=[stop_reason] if stop_reason else [],
        usage=usage,
        tool_calls=calls,
        reasoning=reasoning,
        reasoning_source=sc.DecisionReasoningSourceValues.THINKING if reasoning else None,
        text="".join(texts) or None,
    )
    if _capturing():
        message: dict[str, Any] = {"role": "assistant", "parts": _content(blocks)}
        if stop_reason:
            message["finish_reason"] = stop_reason
        response.output_messages = [message]
    return response


class EventAccumulator:
    """Folds ConverseStream events into the shape of a Converse result: content blocks by
    index (text, reasoning text and tool input JSON grow by deltas), the stop reason from
    `messageStop`, usage from `metadata`."""

    def __init__(self) -> None:
        self.blocks: dict[int, dict[str, Any]] = {}
        self.tool_input: dict[int, list[str]] = {}
        self.stop_reason: str | None = None
        self.usage: Any = None

    def add(self, event: Any) -> None:
        if not isinstance(event, dict):
            return
        if "contentBlockDelta" in event:
            self._delta(event["contentBlockDelta"])
        elif "contentBlockStart" in event:
            start = event["contentBlockStart"]
            use = field_of(field_of(start, "start"), "toolUse")
            if use is not None:
                index = count(field_of(start, "contentBlockIndex"))
                self.blocks[index] = {"toolUse": {**use, "input": {}}}
        elif "messageStop" in event:
            self.stop_reason = text(field_of(event["messageStop"], "stopReason"))
        elif "metadata" in event:
            self.usage = field_of(event["metadata"], "usage")

    def _delta(self, delta_event: Any) -> None:
        index = count(field_of(delta_event, "contentBlockIndex"))
        delta = field_of(delta_event, "delta") or {}
        if "text" in delta:
            block = self.blocks.setdefault(index, {"text": ""})
            block["text"] = block.get("text", "") + str(delta["text"])
        elif "toolUse" in delta:
            self.tool_input.setdefault(index, []).append(str(delta["toolUse"].get("input", "")))
        elif "reasoningContent" in delta:
            said = delta["reasoningContent"].get("text")
            block = self.blocks.setdefault(index, {"reasoningContent": {}})
            reasoning = block["reasoningContent"]
            if said is not None:
                known = reasoning.setdefault("reasoningText", {"text": ""})
                known["text"] += str(said)
            elif "redactedContent" in delta["reasoningContent"]:
                reasoning["redactedContent"] = b""

    def response(self) -> LLMResponse:
        for index, pieces in self.tool_input.items():
            use = self.blocks.setdefault(index, {"toolUse": {"input": {}}})["toolUse"]
            use["input"] = _json("".join(pieces))
        blocks = [self.blocks[index] for index in sorted(self.blocks)]
        return response_from(self.stop_reason, token_usage(self.usage), blocks)


def _json(raw: str) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return raw


# -- hooks -------------------------------------------------------------------------------------


def error_code(exc: BaseException) -> str | None:
    """The API's error code that botocore's `ClientError` carries; a streamed error event
    (`EventStreamError`) names it in lowerCamelCase, spelled here as the same code."""
    code = text(field_of(field_of(getattr(exc, "response", None), "Error"), "Code"))
    return code[:1].upper() + code[1:] if code else None


def handle_result(result: Any, call: LLMCall, readers: Readers) -> Any:
    """botocore's own retries as `otel_agents.llm.attempts`, then the kit's default."""
    retries = integer(field_of(field_of(result, "ResponseMetadata"), "RetryAttempts"))
    if retries is not None:
        call.attempts = retries + 1
    return finish_with(result, call, readers)


def _put_stream(result: Any, stream: Any) -> Any:
    result["stream"] = stream
    return result


CONVERSE = Readers(read_request, read_response, handle_result=handle_result, error_type=error_code)
CONVERSE_STREAM = Readers(
    read_request,
    read_response,
    new_accumulator=EventAccumulator,
    stream_slot=StreamSlot(
        get=lambda result: result.get("stream") if isinstance(result, dict) else None,
        put=_put_stream,
    ),
    handle_result=handle_result,
    error_type=error_code,
)
_OPERATIONS = {"Converse": CONVERSE, "ConverseStream": CONVERSE_STREAM}


def route(client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Readers | None:
    """Converse and ConverseStream of bedrock-runtime; None (untouched) for the rest."""
    operation, _ = _operation(args, kwargs)
    readers = _OPERATIONS.get(operation) if operation is not None else None
    if readers is None:
        return None
    service = getattr(
        getattr(getattr(client, "meta", None), "service_model", None), "service_name", None
    )
    return readers if service == SERVICE else None


HOOKS = (Hook("botocore.client", "BaseClient._make_api_call", route=route),)
patch, unpatch = ClientAdapter("botocore", HOOKS).functions()
