"""handoff(): the boundary between agents."""

from __future__ import annotations

from typing import Any

import pytest
from agents_testing import Telemetry
from opentelemetry.trace import StatusCode

import otel_agents
from otel_agents import semconv as sc


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


VENDOR = {"name": "Acme GmbH", "tax_id": "DE123", "bank_account": "DE89 3704"}


def test_accepted_handoff_nests_the_receiver(content_telemetry: Telemetry) -> None:
    with (
        otel_agents.agent("intake") as intake,
        otel_agents.handoff(to="provisioning", payload=VENDOR) as boundary,
        otel_agents.agent("provisioning"),
    ):
        boundary.check("has_tax_id", "tax_id" in VENDOR)
        boundary.accept("complete record")
    span = content_telemetry.span("handoff provisioning")
    a = attrs(span)
    assert a[sc.HANDOFF_FROM] == "intake" and a[sc.HANDOFF_TO] == "provisioning"
    assert a[sc.HANDOFF_ACCEPTED] is True
    assert a[sc.HANDOFF_CHECKS_PASSED] == ("has_tax_id",)
    assert a[sc.HANDOFF_REASON] == "complete record"
    assert a[sc.HANDOFF_PAYLOAD_SUMMARY] == "dict with 3 keys: name, tax_id, bank_account"
    assert '"tax_id":"DE123"' in a[sc.HANDOFF_PAYLOAD]
    assert a[sc.RUN_ID] == intake.run_id
    receiver = content_telemetry.span("invoke_agent provisioning")
    assert receiver.parent is not None and receiver.parent.span_id == span.context.span_id
    assert attrs(content_telemetry.span("invoke_agent intake"))[sc.RUN_HANDOFFS] == 1


def test_rejected_handoff_records_the_failed_check(telemetry: Telemetry) -> None:
    incomplete = {"name": "Shell Co"}
    with (
        otel_agents.agent("intake"),
        otel_agents.handoff(to="provisioning", payload=incomplete) as boundary,
    ):
        if not boundary.check("has_tax_id", "tax_id" in incomplete, "tax_id missing"):
            boundary.reject("vendor record incomplete")
    a = attrs(telemetry.span("handoff provisioning"))
    assert a[sc.HANDOFF_ACCEPTED] is False
    assert a[sc.HANDOFF_CHECKS_FAILED] == ("has_tax_id: tax_id missing",)
    assert a[sc.HANDOFF_REASON] == "vendor record incomplete"
    assert sc.HANDOFF_PAYLOAD not in a  # content is off by default
    assert a[sc.HANDOFF_PAYLOAD_SUMMARY] == "dict with 1 key: name"


def test_implicit_outcome_follows_checks_and_exceptions(telemetry: Telemetry) -> None:
    with otel_agents.handoff(to="b", source="a") as ok:
        ok.check("fine", True)
    with otel_agents.handoff(to="c", source="a") as bad:
        bad.check("broken", False)
    with pytest.raises(RuntimeError), otel_agents.handoff(to="d", source="a"):
        raise RuntimeError("receiver crashed")
    assert attrs(telemetry.span("handoff b"))[sc.HANDOFF_ACCEPTED] is True
    assert attrs(telemetry.span("handoff c"))[sc.HANDOFF_ACCEPTED] is False
    crashed = telemetry.span("handoff d")
    assert attrs(crashed)[sc.HANDOFF_ACCEPTED] is False
    assert crashed.status.status_code is StatusCode.ERROR


async def test_async_handoff(telemetry: Telemetry) -> None:
    async with otel_agents.agent("x"), otel_agents.handoff(to="y") as boundary:
        boundary.accept()
    assert attrs(telemetry.span("handoff y"))[sc.HANDOFF_FROM] == "x"
