"""Bedrock Runtime over botocore's real request path, answered from recorded wire bytes.

A `before-send` handler stands in for the network: botocore serialises, signs and "sends"
each request as usual, and its real parser reads our bytes (JSON bodies, and the
`application/vnd.amazon.eventstream` binary framing of ConverseStream, encoded here from
readable JSON event lists in `tests/fixtures/bedrock/`)."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config

from wire import load_fixture, load_json_fixture

ENDPOINT = "https://bedrock-runtime.us-east-1.amazonaws.com"
REQUEST_ID = "7a1b2c3d-0000-4e5f-8a9b-0c1d2e3f4a5b"
_STRING = 7  # the event stream header value type of a UTF-8 string


def _header(name: str, value: str) -> bytes:
    name_bytes, value_bytes = name.encode(), value.encode()
    return (
        struct.pack("!B", len(name_bytes))
        + name_bytes
        + struct.pack("!BH", _STRING, len(value_bytes))
        + value_bytes
    )


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event stream message: prelude (total length, headers length, CRC32), headers,
    payload, message CRC32."""
    encoded = b"".join(_header(k, v) for k, v in headers.items())
    total = 4 + 4 + 4 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack("!I", zlib.crc32(message))


def encode_events(events: list[dict[str, Any]]) -> bytes:
    """A fixture's event list (`{"event"|"exception": type, "payload": {...}}`) framed."""
    frames = []
    for event in events:
        payload = json.dumps(event["payload"]).encode()
        if "exception" in event:
            headers = {
                ":exception-type": event["exception"],
                ":content-type": "application/json",
                ":message-type": "exception",
            }
        else:
            headers = {
                ":event-type": event["event"],
                ":content-type": "application/json",
                ":message-type": "event",
            }
        frames.append(frame(headers, payload))
    return b"".join(frames)


class _Raw:
    """What botocore reads a response body from (urllib3's response, in real traffic)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, amt: int = 1024, decode_content: bool | None = None) -> Iterator[bytes]:
        for start in range(0, len(self._body), 7):  # small pieces: frames span reads
            yield self._body[start : start + 7]

    def read(self, amt: int | None = None, decode_content: bool | None = None) -> bytes:
        body, self._body = self._body, b""
        return body

    def close(self) -> None:
        pass


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    extra_headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def fixture(cls, name: str) -> Reply:
        return cls(200, load_fixture(f"bedrock/{name}"))

    @classmethod
    def events(cls, name: str) -> Reply:
        body = encode_events(load_json_fixture(f"bedrock/{name}"))
        return cls(200, body, "application/vnd.amazon.eventstream")

    @classmethod
    def error(cls, status: int, code: str, message: str) -> Reply:
        body = json.dumps({"message": message}).encode()
        return cls(status, body, extra_headers={"x-amzn-ErrorType": f"{code}:http://internal/"})


@dataclass
class Responder:
    """Answers each request botocore sends with the next reply; keeps the requests."""

    replies: list[Reply]
    requests: list[AWSPreparedRequest] = field(default_factory=list)

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        self.requests.append(request)
        reply = self.replies.pop(0)
        headers = {
            "content-type": reply.content_type,
            "x-amzn-requestid": REQUEST_ID,
            **reply.extra_headers,
        }
        return AWSResponse(request.url, reply.status, headers, _Raw(reply.body))


def bedrock_client(responder: Responder, service: str = "bedrock-runtime", **config: Any) -> Any:
    client = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="test-secret",
        region_name="us-east-1",
    ).client(
        service,  # type: ignore[call-overload]
        endpoint_url=ENDPOINT if service == "bedrock-runtime" else None,
        config=Config(**{"retries": {"mode": "standard", "total_max_attempts": 1}, **config}),
    )
    client.meta.events.register("before-send", responder)
    return client
