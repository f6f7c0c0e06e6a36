"""A scripted stand-in for an OpenAI-compatible model server, on the loopback interface.

The demo's agents talk to it with the real `openai` SDK over real HTTP, so the real
instrumentation path runs end to end; only the model's answers are canned. Each answer is
a Chat Completions response in the exact wire format the API sends, chosen by a script
keyed on the agent (the `user` field of the request) and the turn.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True)
class Turn:
    """One scripted model answer: text, tool calls, and the usage the API would report."""

    text: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    prompt_tokens: int = 850
    completion_tokens: int = 120
    cached_tokens: int = 0


@dataclass
class Script:
    """Answers per agent, in order. An agent that runs out gets a short final answer."""

    turns: Mapping[str, Sequence[Turn]]
    _positions: dict[str, int] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_completion(self, request: Mapping[str, Any]) -> dict[str, Any]:
        agent = str(request.get("user") or "default")
        with self._lock:
            position = self._positions.get(agent, 0)
            self._positions[agent] = position + 1
            number = next(self._ids)
        script = self.turns.get(agent, ())
        turn = script[position] if position < len(script) else Turn(text="Done.")
        return _chat_completion(turn, str(request.get("model", "gpt-4.1-mini")), number)


def _chat_completion(turn: Turn, model: str, number: int) -> dict[str, Any]:
    tool_calls = [
        {
            "id": f"call_{number:03d}_{index}",
            "type": "function",
            "function": {"name": call.name, "arguments": json.dumps(dict(call.arguments))},
        }
        for index, call in enumerate(turn.tool_calls)
    ]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": turn.text,
        "refusal": None,
        "annotations": [],
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": f"chatcmpl-demo{number:05d}",
        "object": "chat.completion",
        "created": 1_763_800_000 + number,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": turn.prompt_tokens,
            "completion_tokens": turn.completion_tokens,
            "total_tokens": turn.prompt_tokens + turn.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": turn.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_demo",
    }


class ScriptedModelServer:
    """`with ScriptedModelServer(script) as server:` then `OpenAI(base_url=server.base_url)`."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(script))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> ScriptedModelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            try:
                request = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self._reply(
                    400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}}
                )
                return
            if not self.path.endswith("/chat/completions"):
                self._reply(
                    404, {"error": {"message": f"no route {self.path}", "type": "not_found"}}
                )
                return
            self._reply(200, script.next_completion(request))

        def _reply(self, status: int, payload: Mapping[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.send_header("x-request-id", "req_demo")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the demo's terminal clean

    return Handler
