"""A scripted HTTP server for driving the real `openai` and `anthropic` SDKs in tests.

The SDKs talk to `httpx2`; `ScriptedTransport` plugs into `httpx2.Client` / `httpx2.AsyncClient`
as their transport, answers each request with the next `ScriptedResponse`, and records what it
received. Nothing leaves the process.

```python
transport = ScriptedTransport([ScriptedResponse.fixture("openai/chat_text.json")])
client = openai_client(transport)
completion = client.chat.completions.create(model="gpt-4o-mini", messages=[...])
assert transport.requests[0].json["model"] == "gpt-4o-mini"
```

Server-sent events are delivered as a real stream: the body is cut into small chunks (that split
lines, events and UTF-8 characters) and handed out one at a time as the SDK reads them, so the
SDK's SSE decoder does the work it does against the real APIs.

Fixtures live in `tests/fixtures/<provider>/`: `*.json` bodies and `*.sse` event streams exactly as
the providers send them. An optional `<stem>.meta.json` sidecar gives the `status` and `headers`
the provider sends with that body.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx2

if TYPE_CHECKING:
    import anthropic
    import openai

__all__ = [
    "ANTHROPIC_BASE_URL",
    "AZURE_API_VERSION",
    "AZURE_OPENAI_ENDPOINT",
    "FAKE_API_KEY",
    "FAST_RETRY_HEADERS",
    "FIXTURES_DIR",
    "OPENAI_BASE_URL",
    "AsyncScriptedTransport",
    "RecordedRequest",
    "ScriptedByteStream",
    "ScriptedResponse",
    "ScriptedTransport",
    "anthropic_client",
    "async_anthropic_client",
    "async_azure_openai_client",
    "async_openai_client",
    "azure_openai_client",
    "fixture_meta",
    "load_fixture",
    "load_json_fixture",
    "openai_client",
    "split_chunks",
]

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures"

OPENAI_BASE_URL = "https://api.openai.test/v1"
ANTHROPIC_BASE_URL = "https://api.anthropic.test"
# Azure clients are recognised by their host, so this one keeps the real Azure domain. The
# transport never opens a connection, so no request can reach it.
AZURE_OPENAI_ENDPOINT = "https://example-resource.openai.azure.com"
AZURE_API_VERSION = "2024-10-21"
FAKE_API_KEY = "sk-test-0000000000000000000000000000000000000000"

FAST_RETRY_HEADERS: Mapping[str, str] = {"retry-after-ms": "1"}
"""Both SDKs prefer `retry-after-ms` over `retry-after`: with this header a retry waits 1 ms."""

DEFAULT_SSE_CHUNK_SIZE = 53
"""Bytes per streamed chunk: small and odd, so chunks end mid-line, mid-event and mid-character."""

_RETRYABLE_STATUSES = frozenset({408, 409, 429})


# --------------------------------------------------------------------------------------- fixtures


def _fixture_path(name: str) -> Path:
    path = FIXTURES_DIR / name
    if not path.is_file():
        available = sorted(str(p.relative_to(FIXTURES_DIR)) for p in FIXTURES_DIR.rglob("*.*"))
        raise FileNotFoundError(f"no fixture {name!r} in {FIXTURES_DIR}; available: {available}")
    return path


def load_fixture(name: str) -> bytes:
    """The bytes of `tests/fixtures/<name>`, e.g. `load_fixture("openai/chat_text.json")`."""
    return _fixture_path(name).read_bytes()


def load_json_fixture(name: str) -> Any:
    """A JSON fixture, decoded."""
    return json.loads(load_fixture(name))


def fixture_meta(name: str) -> tuple[int, dict[str, str]]:
    """The status and headers that go with fixture `name`, from its `<stem>.meta.json` sidecar.

    Without a sidecar: 200, and the content type that the file's extension implies.
    """
    path = _fixture_path(name)
    content_type = (
        "text/event-stream; charset=utf-8" if path.suffix == ".sse" else "application/json"
    )
    status, headers = 200, {"content-type": content_type}
    sidecar = path.with_name(f"{path.stem}.meta.json")
    if sidecar.is_file():
        meta = json.loads(sidecar.read_bytes())
        status = int(meta.get("status", status))
        headers.update({k.lower(): str(v) for k, v in meta.get("headers", {}).items()})
    return status, headers


def split_chunks(data: bytes, chunk_size: int = DEFAULT_SSE_CHUNK_SIZE) -> tuple[bytes, ...]:
    """`data` cut into pieces of `chunk_size` bytes (the last may be shorter)."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    return tuple(data[i : i + chunk_size] for i in range(0, len(data), chunk_size))


# -------------------------------------------------------------------------------------- responses


@dataclass(frozen=True)
class ScriptedResponse:
    """One scripted reply.

    `chunks` set: the body is streamed in those pieces (see `ScriptedByteStream`); otherwise `body`
    is sent in one piece. Build with `json`, `sse`, `fixture` or `error` rather than by hand.
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: tuple[bytes, ...] | None = None
    chunk_delay: float = 0.0
    """Seconds to wait before each chunk (sync: `time.sleep`, async: `anyio.sleep`)."""

    @classmethod
    def json(
        cls, payload: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> ScriptedResponse:
        """A JSON body made from `payload`."""
        return cls(
            status=status,
            headers={"content-type": "application/json", **_lower(headers)},
            body=json.dumps(payload).encode(),
        )

    @classmethod
    def sse(
        cls,
        events: bytes | str,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        chunk_size: int = DEFAULT_SSE_CHUNK_SIZE,
        chunk_delay: float = 0.0,
    ) -> ScriptedResponse:
        """A `text/event-stream` body, streamed in chunks of `chunk_size` bytes."""
        data = events.encode() if isinstance(events, str) else events
        return cls(
            status=status,
            headers={"content-type": "text/event-stream; charset=utf-8", **_lower(headers)},
            body=data,
            chunks=split_chunks(data, chunk_size),
            chunk_delay=chunk_delay,
        )

    @classmethod
    def fixture(
        cls,
        name: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        chunk_size: int = DEFAULT_SSE_CHUNK_SIZE,
        chunk_delay: float = 0.0,
        fast_retry: bool = True,
    ) -> ScriptedResponse:
        """Fixture `name`, with the status and headers of its sidecar overridden by the arguments.

        `*.sse` fixtures are streamed in chunks. With `fast_retry` (the default), a response that
        the SDKs retry (408, 409, 429, 5xx) also gets `retry-after-ms: 1`, so that the SDK's own
        retry really happens and waits a millisecond.
        """
        meta_status, meta_headers = fixture_meta(name)
        status = meta_status if status is None else status
        merged = {**meta_headers, **_lower(headers)}
        if fast_retry and (status in _RETRYABLE_STATUSES or status >= 500):
            merged = {**merged, **FAST_RETRY_HEADERS}
        data = load_fixture(name)
        if name.endswith(".sse"):
            return cls(status, merged, data, split_chunks(data, chunk_size), chunk_delay)
        return cls(status, merged, data)

    @classmethod
    def error(
        cls,
        status: int,
        payload: Any,
        *,
        headers: Mapping[str, str] | None = None,
        fast_retry: bool = True,
    ) -> ScriptedResponse:
        """An error with a JSON body; retryable statuses get `retry-after-ms: 1` (see `fixture`)."""
        merged = _lower(headers)
        if fast_retry and (status in _RETRYABLE_STATUSES or status >= 500):
            merged = {**FAST_RETRY_HEADERS, **merged}
        return cls.json(payload, status=status, headers=merged)

    @property
    def is_stream(self) -> bool:
        return self.chunks is not None

    def to_httpx(
        self, request: httpx2.Request
    ) -> tuple[httpx2.Response, ScriptedByteStream | None]:
        """The `httpx2.Response` for `request`, and the byte stream behind it when it streams."""
        if self.chunks is None:
            return (
                httpx2.Response(
                    self.status, headers=dict(self.headers), content=self.body, request=request
                ),
                None,
            )
        stream = ScriptedByteStream(self.chunks, delay=self.chunk_delay)
        response = httpx2.Response(
            self.status, headers=dict(self.headers), stream=stream, request=request
        )
        return response, stream


def _lower(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {k.lower(): v for k, v in (headers or {}).items()}


class ScriptedByteStream(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """A response body handed out one chunk at a time, as the client reads it.

    Works for both sync and async clients. Like a socket, it is one-shot: iterating it again goes on
    from where the last iteration stopped (the `openai` async stream drains the rest of the body
    that way after `[DONE]`). `chunks_sent` shows how far the SDK has read, which lets a test check
    that a stream is consumed lazily; `closed` whether the SDK closed the body.
    """

    def __init__(self, chunks: Sequence[bytes], *, delay: float = 0.0) -> None:
        self._chunks = tuple(chunks)
        self._delay = delay
        self.chunks_sent = 0
        self.closed = False

    @property
    def total_chunks(self) -> int:
        return len(self._chunks)

    @property
    def exhausted(self) -> bool:
        return self.chunks_sent == len(self._chunks)

    def _next_chunk(self) -> bytes | None:
        if self.closed or self.exhausted:
            return None
        chunk = self._chunks[self.chunks_sent]
        self.chunks_sent += 1
        return chunk

    def __iter__(self) -> Iterator[bytes]:
        while not (self.closed or self.exhausted):
            if self._delay:
                time.sleep(self._delay)
            chunk = self._next_chunk()
            if chunk is None:
                return
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not (self.closed or self.exhausted):
            # Give the event loop a turn before every chunk, as a network read would.
            await anyio.sleep(self._delay)
            chunk = self._next_chunk()
            if chunk is None:
                return
            yield chunk

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


# ---------------------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class RecordedRequest:
    """A request that the transport received."""

    method: str
    url: httpx2.URL
    headers: httpx2.Headers
    content: bytes

    @property
    def path(self) -> str:
        return self.url.path

    @cached_property
    def json(self) -> Any:
        """The decoded JSON body, or `None` for a request without one."""
        if not self.content:
            return None
        return json.loads(self.content)

    @property
    def retry_count(self) -> int | None:
        """The SDK's own count of earlier attempts of this call (`x-stainless-retry-count`)."""
        value = self.headers.get("x-stainless-retry-count")
        return None if value is None else int(value)


# --------------------------------------------------------------------------------------- transport


class ScriptedTransport(httpx2.MockTransport):
    """Answers requests with scripted responses, in order, and records every request.

    One instance serves a sync (`httpx2.Client`) or an async (`httpx2.AsyncClient`) client.
    A request that finds the script empty gets a 500 with `x-should-retry: false` (so the SDK does
    not retry it) and is counted in `unexpected`; `assert_done()` fails on it.
    """

    def __init__(self, responses: Iterable[ScriptedResponse] = ()) -> None:
        super().__init__(self._handle)
        self._script: list[ScriptedResponse] = list(responses)
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.streams: list[ScriptedByteStream] = []
        """The byte stream of each streamed response that was sent, in order."""
        self.unexpected = 0

    def add(self, *responses: ScriptedResponse) -> ScriptedTransport:
        """Appends `responses` to the script."""
        with self._lock:
            self._script.extend(responses)
        return self

    @property
    def remaining(self) -> int:
        return len(self._script)

    @property
    def last_request(self) -> RecordedRequest:
        assert self.requests, "no request was received"
        return self.requests[-1]

    def assert_done(self) -> None:
        """Fails unless every scripted response was used and no request found the script empty."""
        assert self.unexpected == 0, f"{self.unexpected} request(s) arrived after the script ended"
        assert not self._script, f"{len(self._script)} scripted response(s) were never requested"

    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        recorded = RecordedRequest(
            method=request.method,
            url=request.url,
            headers=httpx2.Headers(request.headers),
            content=request.content,
        )
        with self._lock:
            self.requests.append(recorded)
            scripted = self._script.pop(0) if self._script else None
            if scripted is None:
                self.unexpected += 1
        if scripted is None:
            return httpx2.Response(
                500,
                headers={"x-should-retry": "false"},
                json={
                    "error": {
                        "type": "scripted_transport_exhausted",
                        "message": f"ScriptedTransport: no response left for {request.method} "
                        f"{request.url}",
                    }
                },
                request=request,
            )
        response, stream = scripted.to_httpx(request)
        if stream is not None:
            with self._lock:
                self.streams.append(stream)
        return response


AsyncScriptedTransport = ScriptedTransport
"""The same class: `ScriptedTransport` serves async clients too."""


# ---------------------------------------------------------------------------------------- clients


def openai_client(
    transport: httpx2.BaseTransport,
    *,
    max_retries: int = 0,
    base_url: str = OPENAI_BASE_URL,
    **kwargs: Any,
) -> openai.OpenAI:
    """A real `openai.OpenAI` whose requests go to `transport`.

    `max_retries` defaults to 0 so that an error fixture fails at once; pass more to test retries.
    Other keyword arguments go to the client.
    """
    import openai

    return openai.OpenAI(
        api_key=kwargs.pop("api_key", FAKE_API_KEY),
        base_url=base_url,
        max_retries=max_retries,
        http_client=httpx2.Client(transport=transport),
        **kwargs,
    )


def async_openai_client(
    transport: httpx2.AsyncBaseTransport,
    *,
    max_retries: int = 0,
    base_url: str = OPENAI_BASE_URL,
    **kwargs: Any,
) -> openai.AsyncOpenAI:
    """As `openai_client`, for `openai.AsyncOpenAI`."""
    import openai

    return openai.AsyncOpenAI(
        api_key=kwargs.pop("api_key", FAKE_API_KEY),
        base_url=base_url,
        max_retries=max_retries,
        http_client=httpx2.AsyncClient(transport=transport),
        **kwargs,
    )


def azure_openai_client(
    transport: httpx2.BaseTransport,
    *,
    max_retries: int = 0,
    azure_endpoint: str = AZURE_OPENAI_ENDPOINT,
    api_version: str = AZURE_API_VERSION,
    **kwargs: Any,
) -> openai.AzureOpenAI:
    """A real `openai.AzureOpenAI` whose requests go to `transport`."""
    import openai

    return openai.AzureOpenAI(
        api_key=kwargs.pop("api_key", FAKE_API_KEY),
        azure_endpoint=azure_endpoint,
        api_version=api_version,
        max_retries=max_retries,
        http_client=httpx2.Client(transport=transport),
        **kwargs,
    )


def async_azure_openai_client(
    transport: httpx2.AsyncBaseTransport,
    *,
    max_retries: int = 0,
    azure_endpoint: str = AZURE_OPENAI_ENDPOINT,
    api_version: str = AZURE_API_VERSION,
    **kwargs: Any,
) -> openai.AsyncAzureOpenAI:
    """As `azure_openai_client`, for `openai.AsyncAzureOpenAI`."""
    import openai

    return openai.AsyncAzureOpenAI(
        api_key=kwargs.pop("api_key", FAKE_API_KEY),
        azure_endpoint=azure_endpoint,
        api_version=api_version,
        max_retries=max_retries,
        http_client=httpx2.AsyncClient(transport=transport),
        **kwargs,
    )


def anthropic_client(
    transport: httpx2.BaseTransport,
    *,
    max_retries: int = 0,
    base_url: str = ANTHROPIC_BASE_URL,
    **kwargs: Any,
) -> anthropic.Anthropic:
    """A real `anthropic.Anthropic` whose requests go to `transport`.

    The SDK's own OpenTelemetry spans are left as the environment sets them; pass
    `open_telemetry=False` to turn them off for this client.
    """
    import anthropic

    return anthropic.Anthropic(
        api_key=kwargs.pop("api_key", FAKE_API_KEY),
        base_url=base_url,
        max_retries=max_retries,
        http_client=httpx2.Client(transport=transport),
        **kwargs,
    )


def async_anthropic_client(
    transport: httpx2.AsyncBaseTransport,
    *,
    max_retries: int = 0,
    base_url: str = ANTHROPIC_BASE_URL,
    **kwargs: Any,
) -> anthropic.AsyncAnthropic:
    """As `anthropic_client`, for `anthropic.AsyncAnthropic`."""
    import anthropic

    return anthropic.AsyncAnthropic(
        api_key=kwargs.pop("api_key", FAKE_API_KEY),
        base_url=base_url,
        max_retries=max_retries,
        http_client=httpx2.AsyncClient(transport=transport),
        **kwargs,
    )
