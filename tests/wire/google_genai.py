"""google-genai clients over a MockTransport that answers as the Gemini API and Vertex AI
do, from the wire bodies in tests/fixtures/google_genai (JSON, and `?alt=sse` streams)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from google import genai
from google.genai import _api_client, types
from google.oauth2.credentials import Credentials

# Newer SDKs talk httpx2 (and still take httpx); older ones only httpx.
http: Any = getattr(_api_client, "httpx2", None) or importlib.import_module("httpx")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "google_genai"


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class Server:
    """Answers the SDK's requests in order from fixtures, and keeps what it was sent."""

    def __init__(self, *answers: tuple[int, str]) -> None:
        self.answers = list(answers)
        self.requests: list[Any] = []

    def __call__(self, request: Any) -> Any:
        self.requests.append(request)
        status, name = self.answers.pop(0)
        stream = name.endswith(".sse")
        content_type = "text/event-stream" if stream else "application/json; charset=UTF-8"
        return http.Response(status, content=body(name), headers={"content-type": content_type})


def options(server: Server, base_url: str | None = None) -> types.HttpOptions:
    transport = http.MockTransport(server)
    # `client_args`, not `httpx_client`: the oldest supported SDK takes only these.
    return types.HttpOptions(
        base_url=base_url,
        client_args={"transport": transport},
        async_client_args={"transport": transport},
    )


def gemini(*answers: tuple[int, str]) -> tuple[genai.Client, Server]:
    server = Server(*answers)
    return genai.Client(api_key="test-key", http_options=options(server)), server


def vertex(*answers: tuple[int, str]) -> tuple[genai.Client, Server]:
    """A Vertex AI client whose credentials hold a token: it never asks Google for one."""
    server = Server(*answers)
    client = genai.Client(
        vertexai=True,
        project="demo-project",
        location="europe-west4",
        credentials=Credentials(token="test-token"),  # type: ignore[no-untyped-call]
        http_options=options(server),
    )
    return client, server


def ok(name: str) -> tuple[int, str]:
    return (200, name)
