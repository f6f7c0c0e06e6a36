"""`otel-agents show RUN`: one run's decision path as a tree in the terminal."""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any

from otel_agents.cli import EXIT_OK, Context, HelpFormatter
from otel_agents.cli import output as fmt
from otel_agents.cli.runs import STATUS_STYLE, run_json
from otel_agents.store import decision_path as dp
from otel_agents.store.reader import LATEST_RUN, RunNotFound, RunSummary

_EXAMPLES = """\
examples:
  otel-agents show                   the newest run
  otel-agents show 3f2a9c1e          a run by a unique prefix of its id (like git)
  otel-agents show 3f2a9c1e --full   long text (reasoning, arguments, results) in full
  otel-agents show 3f2a9c1e --json   the same tree as JSON, for scripts

Each LLM call is shown with the tool calls it asked for beneath it; each tool call with
its arguments, result, the reasoning behind it, the policy verdict and contract check, and
any approval. Arguments, results and reasoning are recorded only when content capture is
on (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY)."""

LABEL_WIDTH = 9
_LABEL_STYLE = {
    dp.AGENT: ("agent", "cyan"),
    dp.LLM: ("llm", "magenta"),
    dp.TOOL: ("tool", "yellow"),
    dp.APPROVAL: ("approval", "blue"),
    dp.HANDOFF: ("handoff", "blue"),
    dp.OTHER: ("span", "dim"),
}
_VERDICT_STYLE = {"allow": "green", "deny": "red", "require_approval": "yellow", "escalate": "red"}
_APPROVAL_STYLE = {"approved": "green", "rejected": "red", "timed_out": "yellow", "error": "red"}

Segment = tuple[str, str | None]  # text and style


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "show",
        parents=[common],
        help="show one run's decision path as a tree",
        description="The decision path of one run: agents, LLM decisions with their"
        " reasoning, the tool calls they led to, approvals, handoffs, retries, detector"
        " findings and cost along the way.",
        epilog=_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "run",
        metavar="RUN",
        nargs="?",
        default="latest",
        help="a run id or a unique prefix (or a trace id); default: latest, the newest run",
    )
    parser.add_argument(
        "--full", action="store_true", help="show long text in full (wrapped) instead of cut"
    )
    parser.add_argument(
        "--all-spans",
        action="store_true",
        help="also show spans otel-agents did not make (HTTP calls, framework internals)",
    )
    parser.add_argument("--json", action="store_true", help="the run and its tree as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.open_store() as store:
        try:
            run_id = store.resolve_run(args.run)
        except RunNotFound:
            trace_id = store.find_trace(args.run) if args.run != LATEST_RUN else None
            if trace_id is None:
                raise
            return _show_trace(args, ctx, trace_id, store.trace_spans(trace_id))
        summary = store.run(run_id)
        spans = store.run_spans(run_id)
    roots = dp.build(spans)
    if args.json:
        document = {"run": run_json(summary), "path": [node.to_json() for node in roots]}
        ctx.term.line(json.dumps(document, indent=2, ensure_ascii=False))
        return EXIT_OK
    TreeView(ctx.term, full=args.full, all_spans=args.all_spans).render(summary, roots)
    return EXIT_OK


def _show_trace(args: argparse.Namespace, ctx: Context, trace_id: str, spans: list[Any]) -> int:
    """A trace with no agent run (tool calls made outside an agent): its spans as a tree."""
    roots = dp.build(spans)
    if args.json:
        document = {"trace_id": trace_id, "run": None, "path": [n.to_json() for n in roots]}
        ctx.term.line(json.dumps(document, indent=2, ensure_ascii=False))
        return EXIT_OK
    TreeView(ctx.term, full=args.full, all_spans=args.all_spans).render_trace(trace_id, roots)
    return EXIT_OK


class TreeView:
    def __init__(self, term: fmt.Terminal, full: bool, all_spans: bool) -> None:
        self.term = term
        self.g = term.glyphs
        self.full = full
        self.all_spans = all_spans
        self.cut = False  # something was shortened: say how to see it all
        self.saw_content = False
        self.spent = 0.0  # LLM cost so far, in display order

    def render(self, summary: RunSummary, roots: list[dp.PathNode]) -> None:
        self._header(summary)
        self._body(roots)

    def render_trace(self, trace_id: str, roots: list[dp.PathNode]) -> None:
        term = self.term
        term.line(term.style("trace ", "bold") + term.style(trace_id, "yellow"))
        starts = [node.span.start_ns for node in roots]
        facts: list[Segment] = [("no agent run: spans recorded outside any agent", "dim")]
        if starts:
            facts.insert(0, (f"started {fmt.local_time(min(starts))}", None))
        term.line(self._join(facts))
        self._body(roots)

    def _body(self, roots: list[dp.PathNode]) -> None:
        self.term.line()
        nodes = self._visible(roots)
        for index, node in enumerate(nodes):
            self._node(node, "", "", index == len(nodes) - 1)
        notes = []
        if self.cut:
            notes.append("Long text was cut to fit; --full shows it all, --json gives everything.")
        if not self.saw_content:
            notes.append(
                "No arguments, results or reasoning were recorded: content capture was off"
                " (set OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY)."
            )
        if notes:
            self.term.line()
        for note in notes:
            self.term.line(self.term.style(note, "dim"))

    # -- header ------------------------------------------------------------------------------

    def _header(self, run: RunSummary) -> None:
        term = self.term
        term.line(term.style("run ", "bold") + term.style(run.run_id, "yellow"))
        facts: list[Segment] = [
            (run.agent or "?", "bold"),
            (run.status, STATUS_STYLE.get(run.status)),
            (f"started {fmt.local_time(run.start_ns)}", None),
            (fmt.duration(run.duration_ns), None),
        ]
        if run.service and not run.service.startswith("unknown_service"):
            facts.append((f"service {run.service}", "dim"))
        term.line(self._join(facts))
        totals = [
            (f"cost {fmt.cost(run.cost_usd)}", None),
            (f"{run.input_tokens:,} in / {run.output_tokens:,} out tokens", None),
            (fmt.plural(run.llm_calls, "LLM call"), None),
            (fmt.plural(run.tool_calls, "tool call"), None),
            (fmt.plural(run.handoffs, "handoff"), None),
            (fmt.plural(run.retries, "retry", "retries"), "yellow" if run.retries else None),
            (fmt.plural(run.anomalies, "anomaly", "anomalies"), "red" if run.anomalies else None),
            (fmt.plural(run.denials, "denial"), "red" if run.denials else None),
        ]
        term.line(self._join(totals))
        if run.error:
            self._text_line("", "error", run.error, "red")
        if run.status in ("running", "incomplete"):
            self._text_line("", "state", _unfinished_text(run), STATUS_STYLE.get(run.status))

    def _join(self, segments: list[Segment]) -> str:
        """Segments joined by dots, wrapped (not cut) to the terminal's width."""
        lines: list[list[Segment]] = [[]]
        used = 0
        for text, style in segments:
            if lines[-1] and used + 3 + len(text) > self.term.width:
                lines.append([])
                used = 0
            if lines[-1]:
                lines[-1].append((" · ", "dim"))
                used += 3
            lines[-1].append((text, style))
            used += len(text)
        rendered = []
        for line in lines:
            text, cut = self._fit(line, self.term.width)
            self.cut |= cut
            rendered.append(text)
        return "\n".join(rendered)

    # -- nodes -------------------------------------------------------------------------------

    def _visible(self, nodes: list[dp.PathNode]) -> list[dp.PathNode]:
        shown: list[dp.PathNode] = []
        for node in nodes:
            if node.kind == dp.OTHER and not self.all_spans:
                shown.extend(self._visible(node.children))
            else:
                shown.append(node)
        return shown

    def _node(
        self,
        node: dp.PathNode,
        prefix: str,
        connector: str,
        last: bool,
        parent: dict[str, Any] | None = None,
    ) -> None:
        children = self._visible(node.children)
        details = node.details()
        if node.kind == dp.LLM and isinstance(details.get("cost_usd"), (int, float)):
            self.spent += float(details["cost_usd"])
        overflow = self._headline(node, details, prefix + connector)
        child_prefix = prefix + (self.g.space if last else self.g.pipe) if connector else prefix
        # Details sit under the node's title; the tree's rail continues to its children.
        rail = self.g.pipe if children else self.g.space
        detail_prefix = child_prefix + rail + " " * (LABEL_WIDTH - len(rail))
        if overflow:
            self._text_line(detail_prefix, "", overflow, None)
        for label, text, style in self._detail_lines(node, details, parent):
            self._text_line(detail_prefix, label, text, style)
        for index, child in enumerate(children):
            is_last = index == len(children) - 1
            connector = self.g.last if is_last else self.g.branch
            self._node(child, child_prefix, connector, is_last, details)

    def _headline(self, node: dp.PathNode, details: dict[str, Any], lead: str) -> str:
        """Print the node's line; with --full, return the facts that did not fit."""
        label, label_style = _LABEL_STYLE[node.kind]
        left: list[Segment] = [(lead, "dim"), (f"{label:<{LABEL_WIDTH}}", label_style)]
        title = node.title
        if node.kind == dp.HANDOFF:
            title = f"{details.get('from') or '?'} {self.g.arrow} {details.get('to') or '?'}"
        left += [(title, "bold"), *self._facts(node, details)]
        right = fmt.duration(node.span.duration_ns)
        if node.span.open:
            right = f"open {right}+"
        if node.kind == dp.LLM and self.spent:
            right = f"{self.g.total} {fmt.cost(self.spent)}  {right:>7}"
        room = self.term.width - len(right) - 1
        rest: list[Segment] = []
        if self.full:
            left, rest = _split(left, room)
        text, cut = self._fit(left, room)
        self.cut |= cut
        pad = max(room - _plain_length(left, room), 0) + 1
        self.term.line(text + " " * pad + self.term.style(right, "dim"))
        return "".join(text for text, _ in rest).strip()

    def _facts(self, node: dp.PathNode, d: dict[str, Any]) -> list[Segment]:
        facts: list[Segment] = []
        error = node.error()
        if node.kind == dp.LLM:
            if d.get("input_tokens") is not None or d.get("output_tokens") is not None:
                facts.append(
                    (
                        f"{d.get('input_tokens') or 0:,}{self.g.arrow}"
                        f"{d.get('output_tokens') or 0:,} tok",
                        None,
                    )
                )
            if d.get("cost_usd") is not None:
                facts.append((fmt.cost(d["cost_usd"]), None))
            if d.get("finish_reasons"):
                facts.append((",".join(d["finish_reasons"]), "dim"))
            if (d.get("attempts") or 1) > 1:
                facts.append((f"{d['attempts']} attempts", "yellow"))
        elif node.kind == dp.TOOL and node.span.open:
            facts.append(("… in flight", "yellow"))
        elif node.kind == dp.TOOL:
            facts.append((self.g.bad, "red") if error else (self.g.ok, "green"))
            policy = d.get("policy") or {}
            if policy.get("verdict"):
                verdict = policy["verdict"]
                facts.append((verdict, _VERDICT_STYLE.get(verdict)))
            if (d.get("attempt") or 1) > 1:
                facts.append((f"attempt {d['attempt']}", "yellow"))
            contract = d.get("contract") or {}
            if contract.get("status") and contract["status"] != "passed":
                facts.append((f"contract {contract['status']}", "red"))
            if d.get("mcp"):
                facts.append((_mcp_text(d["mcp"]), "dim"))
        elif node.kind == dp.APPROVAL:
            status = d.get("approval_status") or "?"
            facts.append((status, _APPROVAL_STYLE.get(status)))
            if d.get("approver"):
                facts.append((f"by {d['approver']}", None))
            if d.get("channel"):
                facts.append((f"via {d['channel']}", "dim"))
            if d.get("wait_s") is not None:
                facts.append((f"waited {fmt.duration(int(float(d['wait_s']) * 1e9))}", None))
        elif node.kind == dp.HANDOFF:
            if d.get("accepted") is True:
                facts.append((f"{self.g.ok} accepted", "green"))
            elif d.get("accepted") is False:
                facts.append((f"{self.g.bad} rejected", "red"))
        elif error:
            facts.append((f"{self.g.bad} {error.get('type') or 'error'}", "red"))
        findings = node.findings()
        if findings:
            names = ", ".join(str(f.get("detector")) for f in findings)
            facts.append((f"{self.g.warn} {names}", "red"))
        return [(" ", None), *_interleave(facts, ("  ", None))] if facts else []

    def _detail_lines(
        self, node: dp.PathNode, d: dict[str, Any], parent: dict[str, Any] | None
    ) -> list[tuple[str, str, str | None]]:
        lines: list[tuple[str, str, str | None]] = []

        def add(label: str, value: Any, style: str | None = None) -> None:
            if value is None or value == "" or value == []:
                return
            lines.append((label, value if isinstance(value, str) else json.dumps(value), style))

        if node.kind == dp.LLM:
            add("thinks", d.get("reasoning"), "italic")
            add("says", d.get("text"))
        elif node.kind == dp.TOOL:
            source = d.get("reasoning_source")
            why = d.get("reasoning")
            if (
                node.requested_by
                and parent
                and why in (parent.get("text"), parent.get("reasoning"))
            ):
                why = None  # the decision right above already shows it
            add("why", f"{why}  ({source})" if why and source else why)
            add("args", d.get("arguments") or d.get("arguments_summary"))
            add("result", d.get("result"))
            add(
                "policy",
                _policy_text(d.get("policy")),
                _VERDICT_STYLE.get((d.get("policy") or {}).get("verdict", "")),
            )
            contract = d.get("contract") or {}
            add("contract", contract.get("violation"), "red")
        elif node.kind == dp.APPROVAL:
            add("reason", d.get("reason"))
        elif node.kind == dp.HANDOFF:
            checks = [f"{self.g.ok} {c}" for c in d.get("checks_passed") or []]
            checks += [f"{self.g.bad} {c}" for c in d.get("checks_failed") or []]
            add("checks", "  ".join(checks), "red" if d.get("checks_failed") else None)
            add("reason", d.get("reason"))
            add("payload", d.get("payload") or d.get("payload_summary"))
        if any(d.get(k) for k in ("reasoning", "text", "arguments", "result", "payload")):
            self.saw_content = True
        error = node.error()
        if error and error.get("message"):
            add("error", f"{error.get('type') or 'error'}: {error['message']}", "red")
        for finding in node.findings():
            add("finding", f"{finding.get('detector')}: {_finding_text(finding)}", "red")
        return lines

    def _text_line(self, prefix: str, label: str, text: str, style: str | None) -> None:
        term = self.term
        head = f"{label:<{LABEL_WIDTH}}"
        room = max(term.width - len(prefix) - len(head), 20)
        if not self.full:
            shown, cut = term.fit(text, room)
            self.cut |= cut
            lines = [shown]
        else:
            lines = []
            for paragraph in text.splitlines() or [""]:
                lines.extend(textwrap.wrap(paragraph, room) or [""])
        for index, line in enumerate(lines):
            lead = head if index == 0 else " " * len(head)
            term.line(term.style(prefix, "dim") + term.style(lead, "dim") + term.style(line, style))

    # -- fitting styled text --------------------------------------------------------------

    def _fit(self, segments: list[Segment], width: int) -> tuple[str, bool]:
        out: list[str] = []
        used = 0
        for text, style in segments:
            if used + len(text) > width:
                room = width - used
                shown, _ = self.term.fit(text, room) if room > 0 else ("", True)
                out.append(self.term.style(shown, style or ""))
                return "".join(out), True
            out.append(self.term.style(text, style) if style else text)
            used += len(text)
        return "".join(out), False


def _split(segments: list[Segment], width: int) -> tuple[list[Segment], list[Segment]]:
    """The whole segments that fit in `width` (at least the first three), and the rest."""
    used = 0
    for index, (text, _) in enumerate(segments):
        if used + len(text) > width and index >= 3:
            return segments[:index], segments[index:]
        used += len(text)
    return segments, []


def _plain_length(segments: list[Segment], limit: int) -> int:
    return min(sum(len(text) for text, _ in segments), limit)


def _interleave(segments: list[Segment], separator: Segment) -> list[Segment]:
    joined: list[Segment] = []
    for index, segment in enumerate(segments):
        if index:
            joined.append(separator)
        joined.append(segment)
    return joined


def _unfinished_text(run: RunSummary) -> str:
    """What an unfinished run's header says: is it still going, or did it die?"""
    still_open = f"{fmt.plural(run.open_spans, 'span')} still open" if run.open_spans else ""
    if run.status == "running":
        return f"still running: {still_open or 'no root span yet'}"
    if run.process_alive is False and run.open_spans:
        return f"did not finish: its process is gone (killed or crashed); {still_open}"
    return f"did not finish: quiet for over 10 minutes{'; ' + still_open if still_open else ''}"


def _mcp_text(mcp: dict[str, Any]) -> str:
    """`via mcp billing-server (tcp)` for the client's call, `served by mcp ...` for the
    server's run of it."""
    where = str(mcp.get("server") or "?")
    if mcp.get("transport"):
        where += f" ({mcp['transport']})"
    return f"via mcp {where}" if mcp.get("side") == "client" else f"served by mcp {where}"


def _policy_text(policy: dict[str, Any] | None) -> str | None:
    if not policy or not policy.get("verdict"):
        return None
    text = str(policy["verdict"])
    if policy.get("rule"):
        text += f" by rule {policy['rule']}"
    if policy.get("reason"):
        text += f": {policy['reason']}"
    if policy.get("mode"):
        text += f" ({policy['mode']})"
    return text


def _finding_text(finding: dict[str, Any]) -> str:
    text = str(finding.get("message") or "")
    observed, threshold = finding.get("observed"), finding.get("threshold")
    if observed is not None and threshold is not None:
        text += f" (observed {_number(observed)}, threshold {_number(threshold)})"
    return text.strip()


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
