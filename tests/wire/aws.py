"""Answering botocore from recorded wire bytes, on its real request path.

`AwsResponder` registers on a client's `before-send` event: botocore has serialized, signed
and built the HTTP request; instead of sending it, it gets back an `AWSResponse` made of
the recorded status, headers and body, which its real parser (JSON, or the binary
`application/vnd.amazon.eventstream` framing) reads as it reads AWS's answers.

`event_stream(events)` frames a list of events (`{"messageStart": {...}}`, or
`("exception", "throttlingException", {...})`) as AWS's event stream protocol does:
prelude (total length, headers length, CRC32), string headers (`:event-type`,
`:content-type`, `:message-type`), the JSON payload and the message CRC32.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse

EVENT_STREAM = "application/vnd.amazon.eventstream"


def _header(name: str, value: str) -> bytes:
    name_bytes, value_bytes = name.encode(), value.encode()
    return (
        struct.pack("B", len(name_bytes))
        + name_bytes
        + struct.pack("B", 7)  # type 7: string
        + struct.pack(">H", len(value_bytes))
        + value_bytes
    )


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event stream message."""
    header_bytes = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(header_bytes) + len(payload) + 4
    prelude = struct.pack(">II", total, len(header_bytes))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + header_bytes + payload
    return message + struct.pack(">I", zlib.crc32(message) & 0xFFFFFFFF)


def event_stream(events: Sequence[Any]) -> bytes:
    """Frame events: `{name: body}` for an event, `("exception", name, body)` for an error."""
    out = b""
    for event in events:
        if isinstance(event, tuple):
            _, name, body = event
            headers = {
                ":exception-type": name,
                ":content-type": "application/json",
                ":message-type": "exception",
            }
        else:
            [(name, body)] = event.items()
            headers = {
                ":event-type": name,
                ":content-type": "application/json",
                ":message-type": "event",
            }
        out += frame(headers, json.dumps(body).encode())
    return out


class RawBody:
    """What botocore reads a response body from (`stream()` in chunks, `close()`)."""

    def __init__(self, body: bytes, chunk_size: int = 17) -> None:
        self._body = body
        self._chunk_size = chunk_size
        self.closed = False

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        for start in range(0, len(self._body), self._chunk_size):
            yield self._body[start : start + self._chunk_size]

    def read(self, *args: Any) -> bytes:
        return self._body

    def close(self) -> None:
        self.closed = True


@dataclass
class Recorded:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, **headers: str) -> Recorded:
        return cls(status, json.dumps(payload).encode(), headers=dict(headers))

    @classmethod
    def events(cls, events: Sequence[Any]) -> Recorded:
        return cls(200, event_stream(events), EVENT_STREAM)


@dataclass
class AwsResponder:
    """Answers a botocore client's requests with recorded responses, in order."""

    responses: list[Recorded]
    requests: list[AWSPreparedRequest] = field(default_factory=list)

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-send", self._answer)
        return client

    def _answer(self, request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse:
        self.requests.append(request)
        recorded = self.responses.pop(0)
        headers = {
            "content-type": recorded.content_type,
            "x-amzn-requestid": f"req-{len(self.requests)}",
            **recorded.headers,
        }
        return AWSResponse(request.url, recorded.status, headers, RawBody(recorded.body))
