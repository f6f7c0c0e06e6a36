"""Human approval: pluggable approvers that a paused tool call waits on.

An approver gets an `ApprovalRequest` and a timeout and answers with an `ApprovalDecision`
(approved or not, by whom, why), or `None` when no answer came in time. Built in:

- `CallbackApprover(fn)`: your function decides (a chat-ops bot, a test);
- `TerminalApprover()`: asks on the terminal, `y`/`n` plus an optional reason;
- `FileApprover(directory)`: across processes: writes `<id>.request.json`, waits for
  `<id>.decision.json` (write it with `FileApprover.answer(...)` or by hand);
- `HttpApprover(port=...)`: across processes: a small loopback HTTP endpoint,
  `GET /approvals` lists what waits, `POST /approvals/<id>` with
  `{"approved": true, "approver": "alice", "reason": "..."}` answers.

The gate (`otel_agents.policy.gate`) traces the wait and applies the timeout and error
defaults; an approver only has to ask and listen.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: http.server costs ~20 ms to import
    from http.server import BaseHTTPRequestHandler

_logger = logging.getLogger("otel_agents")


@dataclass(frozen=True)
class ApprovalRequest:
    """What a human is asked to approve. `arguments` is already scrubbed of secrets and
    truncated (it may be shown on a terminal or written to disk)."""

    id: str
    tool: str
    agent: str | None
    arguments: str | None
    rule: str
    reason: str
    run_id: str | None = None
    call_id: str | None = None
    records: int | None = None
    cost_usd: float | None = None

    def summary(self) -> str:
        lines = [
            f"Approval needed: tool {self.tool!r}"
            + (f" for agent {self.agent!r}" if self.agent else ""),
            f"  rule:      {self.rule}",
            f"  reason:    {self.reason}",
        ]
        if self.arguments is not None:
            lines.append(f"  arguments: {self.arguments}")
        if self.records is not None:
            lines.append(f"  records:   {self.records}")
        if self.cost_usd is not None:
            lines.append(f"  cost:      ${self.cost_usd:.2f}")
        if self.run_id:
            lines.append(f"  run:       {self.run_id}")
        return "\n".join(lines)


@dataclass(frozen=True)
class ApprovalDecision:
    approved: bool
    approver: str | None = None
    reason: str | None = None


def new_request_id() -> str:
    return uuid.uuid4().hex


class Approver:
    """Base class. `request` blocks until a human answers or `timeout` seconds pass.

    Return the decision, or `None` on timeout. An exception means the channel failed; the
    gate then applies the policy's `on_error` outcome.
    """

    channel = "custom"

    def request(self, request: ApprovalRequest, timeout: float) -> ApprovalDecision | None:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the approver holds (a server, a thread). Called by `uninstrument()`."""


# -- callback --------------------------------------------------------------------------


class CallbackApprover(Approver):
    """Calls `decide(request)` and takes its answer: a bool or an `ApprovalDecision`.

    The function runs in a worker thread so that the timeout holds even if it hangs.
    """

    channel = "callback"

    def __init__(self, decide: Callable[[ApprovalRequest], bool | ApprovalDecision]) -> None:
        self.decide = decide

    def request(self, request: ApprovalRequest, timeout: float) -> ApprovalDecision | None:
        outcome: list[Any] = []
        failure: list[BaseException] = []

        def run() -> None:
            try:
                outcome.append(self.decide(request))
            except BaseException as exc:
                failure.append(exc)

        worker = threading.Thread(target=run, name="otel-agents-approval", daemon=True)
        worker.start()
        worker.join(timeout)
        if failure:
            raise failure[0]
        if not outcome:
            return None
        return _as_decision(outcome[0], "callback")


def _as_decision(answer: Any, channel: str) -> ApprovalDecision:
    if isinstance(answer, ApprovalDecision):
        return answer
    if isinstance(answer, bool):
        return ApprovalDecision(answer)
    raise TypeError(f"the {channel} approver answered {type(answer).__name__}, not a bool")


# -- terminal --------------------------------------------------------------------------


class TerminalApprover(Approver):
    """Asks on the terminal: `y` (or `yes`) approves, anything else rejects; words after
    the answer are the reason. Prompts from concurrent calls take turns.

    The timeout is enforced where the input stream has a file descriptor (a terminal or a
    pipe on POSIX); otherwise the read blocks until a line arrives.
    """

    channel = "terminal"
    _turn = threading.Lock()

    def __init__(
        self,
        stdin: IO[str] | None = None,
        stdout: IO[str] | None = None,
        approver: str | None = None,
    ) -> None:
        self._stdin = stdin
        self._stdout = stdout
        self._approver = approver

    def request(self, request: ApprovalRequest, timeout: float) -> ApprovalDecision | None:
        deadline = time.monotonic() + timeout
        if not self._turn.acquire(timeout=timeout):
            return None
        try:
            stdin = self._stdin or sys.stdin
            stdout = self._stdout or sys.stderr
            stdout.write(f"\n{request.summary()}\nApprove? [y/N] (timeout {timeout:.0f}s): ")
            stdout.flush()
            line = _read_line(stdin, deadline - time.monotonic())
        finally:
            self._turn.release()
        if line is None:
            return None
        if line == "":
            raise EOFError("the terminal closed before an answer")
        answer, _, reason = line.strip().partition(" ")
        return ApprovalDecision(
            approved=answer.lower() in ("y", "yes"),
            approver=self._approver or _user(),
            reason=reason.strip() or None,
        )


def _read_line(stream: IO[str], timeout: float) -> str | None:
    """A line from `stream`, or None after `timeout` seconds; "" at end of input."""
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):
        descriptor = None
    if descriptor is not None and os.name == "posix":
        ready, _, _ = select.select([descriptor], [], [], max(timeout, 0.0))
        if not ready:
            return None
    return stream.readline()


def _user() -> str | None:
    try:
        import getpass  # here: only the terminal approver asks

        return getpass.getuser()
    except Exception:
        return None


# -- approval files --------------------------------------------------------------------


class FileApprover(Approver):
    """Approval through a shared directory, for a human or tool in another process.

    For each request it writes `<id>.request.json` (the request's fields) and waits for
    `<id>.decision.json`: `{"approved": true|false, "approver": "...", "reason": "..."}`.
    Both files are removed once answered or timed out.
    """

    channel = "file"

    def __init__(self, directory: str | os.PathLike[str], poll_interval: float = 0.2) -> None:
        self.directory = Path(directory)
        self.poll_interval = poll_interval
        self.directory.mkdir(parents=True, exist_ok=True)

    def request(self, request: ApprovalRequest, timeout: float) -> ApprovalDecision | None:
        request_path = self.directory / f"{request.id}.request.json"
        decision_path = self.directory / f"{request.id}.decision.json"
        _write_atomically(request_path, asdict(request))
        deadline = time.monotonic() + timeout
        try:
            while True:
                if decision_path.exists():
                    return _parse_decision(json.loads(decision_path.read_text("utf-8")))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                time.sleep(min(self.poll_interval, remaining))
        finally:
            for path in (request_path, decision_path):
                with contextlib.suppress(OSError):
                    path.unlink()

    @staticmethod
    def pending(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
        """The requests waiting in `directory`, oldest first."""
        paths = sorted(Path(directory).glob("*.request.json"), key=lambda p: p.stat().st_mtime)
        requests = []
        for path in paths:
            with contextlib.suppress(OSError, ValueError):
                requests.append(json.loads(path.read_text("utf-8")))
        return requests

    @staticmethod
    def answer(
        directory: str | os.PathLike[str],
        request_id: str,
        approved: bool,
        approver: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Answer a waiting request (from any process that can write the directory)."""
        decision = {"approved": approved, "approver": approver, "reason": reason}
        _write_atomically(Path(directory) / f"{request_id}.decision.json", decision)


def _write_atomically(path: Path, data: Mapping[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_text(json.dumps(data, indent=2), "utf-8")
    os.replace(temporary, path)


def _parse_decision(data: Any) -> ApprovalDecision:
    if not isinstance(data, Mapping) or not isinstance(data.get("approved"), bool):
        raise ValueError('a decision must be a JSON object with "approved": true or false')
    approver, reason = data.get("approver"), data.get("reason")
    return ApprovalDecision(
        data["approved"],
        approver if isinstance(approver, str) else None,
        reason if isinstance(reason, str) else None,
    )


# -- loopback HTTP ---------------------------------------------------------------------


class HttpApprover(Approver):
    """A small HTTP endpoint for approvals, on the loopback interface by default.

    `GET /approvals` lists the waiting requests; `GET /approvals/<id>` shows one;
    `POST /approvals/<id>` with a JSON decision answers it. With `token`, every request
    must carry `Authorization: Bearer <token>`. `url` is where it listens.
    """

    channel = "http"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> None:
        self._pending: dict[
            str, tuple[ApprovalRequest, threading.Event, list[ApprovalDecision]]
        ] = {}
        self._lock = threading.Lock()
        self._token = token
        from http.server import ThreadingHTTPServer  # here: a policy rarely serves HTTP

        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="otel-agents-approvals", daemon=True
        )
        self._thread.start()
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"http://{bound_host!s}:{bound_port}"
        _logger.info("otel-agents: approvals are answered at %s/approvals", self.url)

    def request(self, request: ApprovalRequest, timeout: float) -> ApprovalDecision | None:
        event = threading.Event()
        answer: list[ApprovalDecision] = []
        with self._lock:
            self._pending[request.id] = (request, event, answer)
        try:
            event.wait(timeout)
        finally:
            with self._lock:
                self._pending.pop(request.id, None)
        return answer[0] if answer else None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the HTTP side -----------------------------------------------------------------

    def _listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(request) for request, _, _ in self._pending.values()]

    def _lookup(self, request_id: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._pending.get(request_id)
        return asdict(entry[0]) if entry else None

    def _answer(self, request_id: str, decision: ApprovalDecision) -> bool:
        with self._lock:
            entry = self._pending.get(request_id)
            if entry is None or entry[2]:
                return False
            entry[2].append(decision)
        entry[1].set()
        return True

    def _authorized(self, header: str | None) -> bool:
        return self._token is None or header == f"Bearer {self._token}"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        from http.server import BaseHTTPRequestHandler

        approver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not approver._authorized(self.headers.get("Authorization")):
                    return self._reply(401, {"error": "unauthorized"})
                if self.path.rstrip("/") == "/approvals":
                    return self._reply(200, approver._listing())
                found = approver._lookup(self._request_id())
                if found is None:
                    return self._reply(404, {"error": "no such pending approval"})
                return self._reply(200, found)

            def do_POST(self) -> None:
                if not approver._authorized(self.headers.get("Authorization")):
                    return self._reply(401, {"error": "unauthorized"})
                length = min(int(self.headers.get("Content-Length") or 0), 65_536)
                try:
                    decision = _parse_decision(json.loads(self.rfile.read(length) or b"null"))
                except ValueError as exc:
                    return self._reply(400, {"error": str(exc)})
                if not approver._answer(self._request_id(), decision):
                    return self._reply(404, {"error": "no such pending approval"})
                return self._reply(200, {"status": "approved" if decision.approved else "rejected"})

            def _request_id(self) -> str:
                prefix = "/approvals/"
                return self.path[len(prefix) :].strip("/") if self.path.startswith(prefix) else ""

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                _logger.debug("approval endpoint: " + format, *args)

        return Handler
