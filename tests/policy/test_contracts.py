"""Tool contracts (JSON Schema and pydantic): which side broke the contract, in both modes;
contract properties on the span and feeding the policy; and handoff receiver checks."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from policy_helpers import attrs, reinstrument

import otel_agents
from otel_agents import semconv as sc
from otel_agents.policy import (
    ContractViolation,
    HandoffRejected,
    Mode,
    Policy,
    PolicyError,
    ToolContract,
    compile_schema,
)
from otel_agents.policy.evaluator import RULE_IRREVERSIBLE, RULE_MAX_RECORDS

ran: list[str] = []

ACCOUNT_INPUT = {
    "type": "object",
    "properties": {
        "vendor_id": {"type": "string", "pattern": "^v-[0-9]+$"},
        "plan": {"enum": ["standard", "premium"]},
    },
    "required": ["vendor_id", "plan"],
    "additionalProperties": False,
}
ACCOUNT_OUTPUT = {
    "type": "object",
    "properties": {"account_id": {"type": "string"}},
    "required": ["account_id"],
}


@otel_agents.tool(
    contract=ToolContract(
        input=ACCOUNT_INPUT,
        output=ACCOUNT_OUTPUT,
        reversible=False,
        impact_scope="vendor_account",
        rollback="deactivate_account(account_id)",
        failure_modes=["DuplicateAccount", "QuotaExceeded"],
    )
)
def create_account(vendor_id: Any, plan: Any = "standard") -> dict[str, Any]:
    ran.append(str(vendor_id))
    return {"id": 7} if vendor_id == "v-666" else {"account_id": f"acct-{vendor_id}"}


class Grant(pydantic.BaseModel):
    account_id: str
    role: str
    seats: int = pydantic.Field(default=1, ge=1)


class Granted(pydantic.BaseModel):
    grant_id: str


@otel_agents.tool(contract=ToolContract(input=Grant, output=Granted))
def grant(account_id: str, role: str, seats: Any = 1, reply: Any = None) -> Any:
    ran.append(role)
    return reply if reply is not None else Granted(grant_id="g-1")


@pytest.fixture(autouse=True)
def _clear() -> None:
    ran.clear()


def span_of(telemetry: Any, name: str) -> dict[str, Any]:
    (span,) = [s for s in telemetry.spans() if s.name == f"execute_tool {name}"]
    return attrs(span)


# -- JSON Schema -----------------------------------------------------------------------


def test_a_call_that_keeps_the_contract(telemetry: Any) -> None:
    reinstrument(telemetry, policy_mode="enforce")
    assert create_account("v-1", "standard") == {"account_id": "acct-v-1"}
    span = span_of(telemetry, "create_account")
    assert span[sc.CONTRACT_STATUS] == "passed"
    assert sc.CONTRACT_VIOLATION not in span
    # The contract's declarations are on the span.
    assert span[sc.TOOL_REVERSIBLE] is False
    assert span[sc.TOOL_IMPACT_SCOPE] == "vendor_account"
    assert span[sc.CONTRACT_ROLLBACK] == "deactivate_account(account_id)"
    assert span[sc.CONTRACT_FAILURE_MODES] == ("DuplicateAccount", "QuotaExceeded")


def test_bad_input_is_the_agents_fault_and_stops_the_call_in_enforce_mode(telemetry: Any) -> None:
    reinstrument(telemetry, policy_mode="enforce")
    with pytest.raises(ContractViolation) as caught:
        create_account("v-1", "gold-SECRET-PLAN")
    assert ran == []
    stop = caught.value
    assert (stop.tool, stop.side) == ("create_account", "input")
    assert "the agent sent arguments that do not match its input schema" in str(stop)
    span = span_of(telemetry, "create_account")
    assert span[sc.CONTRACT_STATUS] == "input_violation"
    assert (
        span[sc.CONTRACT_VIOLATION]
        == "input (agent's fault): $.plan: not one of the allowed values"
    )
    assert "SECRET" not in span[sc.CONTRACT_VIOLATION]  # no offending values


def test_bad_input_is_only_recorded_in_observe_mode(telemetry: Any) -> None:
    reinstrument(telemetry)  # observe is the default
    assert create_account(42, "standard") == {"account_id": "acct-42"}
    span = span_of(telemetry, "create_account")
    assert span[sc.CONTRACT_STATUS] == "input_violation"
    assert span[sc.CONTRACT_VIOLATION] == "input (agent's fault): $.vendor_id: expected type string"


@pytest.mark.parametrize("mode", ["observe", "enforce"])
def test_bad_output_is_the_tools_fault_and_is_recorded(telemetry: Any, mode: str) -> None:
    reinstrument(telemetry, policy_mode=mode)
    assert create_account("v-666", "premium") == {"id": 7}  # the tool already ran
    span = span_of(telemetry, "create_account")
    assert span[sc.CONTRACT_STATUS] == "output_violation"
    assert (
        span[sc.CONTRACT_VIOLATION]
        == "output (tool's fault): $: 'account_id' is a required property"
    )


def test_missing_and_extra_arguments(telemetry: Any) -> None:
    reinstrument(telemetry, policy_mode="enforce")
    # Only the arguments the agent passed are checked (defaults are not filled in).
    with pytest.raises(ContractViolation, match="'plan' is a required property"):
        create_account("v-1")
    with pytest.raises(ContractViolation, match=r"Additional properties are not allowed \('seats'"):
        create_account(vendor_id="v-1", plan="standard", seats=3)  # type: ignore[call-arg]
    assert ran == []


# -- pydantic --------------------------------------------------------------------------


def test_pydantic_input_and_output(telemetry: Any) -> None:
    reinstrument(telemetry, policy_mode="enforce")
    assert grant("acct-1", "viewer", seats=2) == Granted(grant_id="g-1")
    assert span_of(telemetry, "grant")[sc.CONTRACT_STATUS] == "passed"


def test_pydantic_bad_input(telemetry: Any) -> None:
    reinstrument(telemetry, policy_mode="enforce")
    with pytest.raises(
        ContractViolation, match=r"\$\.seats: Input should be greater than or equal to 1"
    ):
        grant("acct-1", "viewer", seats=0)
    assert ran == []
    assert span_of(telemetry, "grant")[sc.CONTRACT_STATUS] == "input_violation"


def test_pydantic_bad_output(telemetry: Any) -> None:
    reinstrument(telemetry, policy_mode="enforce")
    grant("acct-1", "viewer", reply={"grant": "g-1"})
    span = span_of(telemetry, "grant")
    assert span[sc.CONTRACT_STATUS] == "output_violation"
    assert span[sc.CONTRACT_VIOLATION] == "output (tool's fault): $.grant_id: Field required"


def test_any_type_pydantic_can_validate() -> None:
    check = compile_schema(list[Granted])
    assert check is not None
    assert check.violation([{"grant_id": "a"}]) is None
    assert check.violation([{"grant_id": 1}]) == "$[0].grant_id: Input should be a valid string"


def test_a_broken_schema_fails_when_the_contract_is_made() -> None:
    with pytest.raises(PolicyError, match="invalid JSON Schema"):
        ToolContract(input={"type": "no-such-type"})
    with pytest.raises(PolicyError, match="must be a JSON Schema mapping or a type"):
        ToolContract(output=42)


# The fast path may only pass what jsonschema passes; whatever it does not pass,
# jsonschema decides. Each schema meets values that fit and values that just miss.
FAST_CASES: list[tuple[dict[str, Any], list[Any]]] = [
    (
        ACCOUNT_INPUT,
        [
            {"vendor_id": "v-1", "plan": "standard"},
            {"vendor_id": "v-1", "plan": "gold"},
            {"vendor_id": "x-1", "plan": "standard"},
            {"vendor_id": "v-1"},
            {"vendor_id": "v-1", "plan": "standard", "extra": 1},
            {"vendor_id": 1, "plan": "standard"},
            ["not", "an", "object"],
        ],
    ),
    (
        {
            "type": "object",
            "properties": {
                "seats": {"type": "integer", "minimum": 1, "exclusiveMaximum": 10},
                "price": {"type": ["number", "null"], "maximum": 5.5},
                "ids": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "note": {"type": "string", "maxLength": 3},
                "flag": {"const": "on"},
            },
            "additionalProperties": {"type": "boolean"},
        },
        [
            {"seats": 1, "price": None, "ids": ["a"], "note": "abc", "flag": "on", "x": True},
            {"seats": 1.0},  # an integer to jsonschema, not to the fast path
            {"seats": True},
            {"seats": 0},
            {"seats": 10},
            {"price": 5.5},
            {"price": 5.6},
            {"price": False},
            {"ids": []},
            {"ids": ["a", 2]},
            {"ids": ("a",)},
            {"note": "abcd"},
            {"flag": "off"},
            {"x": 1},
        ],
    ),
    ({"type": "object", "required": ["granted"]}, [{"granted": 1}, {}, None]),
    ({"enum": [1, True]}, [1, True, 1.0]),  # not compiled: jsonschema alone
]


@pytest.mark.parametrize(("schema", "values"), FAST_CASES)
def test_the_json_schema_fast_path_agrees_with_jsonschema(
    schema: dict[str, Any], values: list[Any]
) -> None:
    import jsonschema

    from otel_agents.policy.contracts import compile_fast_check

    fits = compile_fast_check(schema)
    check = compile_schema(schema)
    assert check is not None
    for value in values:
        valid = jsonschema.validators.validator_for(schema)(schema).is_valid(value)
        if fits is not None and fits(value):
            assert valid, value
        assert (check.violation(value) is None) == valid, value


def test_schemas_out_of_the_fast_paths_reach() -> None:
    from otel_agents.policy.contracts import compile_fast_check

    assert compile_fast_check({"$ref": "#/$defs/x", "$defs": {"x": {}}}) is None
    assert compile_fast_check({"anyOf": [{"type": "string"}]}) is None
    assert compile_fast_check({"$schema": "http://json-schema.org/draft-04/schema#"}) is None
    assert compile_fast_check({"items": [{"type": "string"}]}) is None
    assert compile_fast_check(ACCOUNT_INPUT) is not None


# -- failure modes ---------------------------------------------------------------------


class DuplicateAccount(Exception):
    pass


@otel_agents.tool(contract=ToolContract(failure_modes=["DuplicateAccount", "OSError"]))
def open_account(error: type[Exception] | None) -> str:
    if error is not None:
        raise error("boom")
    return "ok"


@pytest.mark.parametrize(
    ("error", "status"),
    [(DuplicateAccount, None), (ConnectionError, None), (KeyError, "output_violation")],
)
def test_a_failure_outside_the_declared_modes_is_the_tools_fault(
    telemetry: Any, error: type[Exception], status: str | None
) -> None:
    reinstrument(telemetry)
    with pytest.raises(error):
        open_account(error)
    span = span_of(telemetry, "open_account")
    assert span[sc.CONTRACT_FAILURE_MODES] == ("DuplicateAccount", "OSError")
    assert span.get(sc.CONTRACT_STATUS) == status
    if status is not None:
        assert span[sc.CONTRACT_VIOLATION] == (
            "output (tool's fault): raised KeyError, not one of its declared failure modes "
            "(DuplicateAccount, OSError)"
        )


# -- contract properties feed the policy -----------------------------------------------


@otel_agents.tool(contract=ToolContract(records="account_ids"))
def revoke(account_ids: list[str]) -> int:
    ran.append(f"revoke {len(account_ids)}")
    return len(account_ids)


def test_contract_properties_feed_the_policy(telemetry: Any) -> None:
    asked: list[str] = []

    def approver(request: Any) -> bool:
        asked.append(request.rule)
        return True

    reinstrument(telemetry, policy=Policy(mode=Mode.ENFORCE), approver=approver)
    create_account("v-1", "standard")  # irreversible by contract
    revoke(["a"])
    revoke(["a", "b"])  # more than one record, by contract
    assert asked == [RULE_IRREVERSIBLE, RULE_MAX_RECORDS]
    records = [
        attrs(s)[sc.TOOL_CALL_RECORDS] for s in telemetry.spans() if s.name == "execute_tool revoke"
    ]
    assert records == [1, 2]


# -- handoff receiver checks -----------------------------------------------------------


class VendorSummary(pydantic.BaseModel):
    vendor_id: str
    tax_id: str


RECEIVER_CHECKS = {
    "screened": lambda summary: summary.get("screened") is True,
    "known_plan": lambda summary: (summary.get("plan") in ("standard", "premium"), "unknown plan"),
    "explodes": lambda summary: summary["no-such-key"],
}


def test_declared_handoff_checks_run_and_are_recorded(telemetry: Any) -> None:
    summary = {"vendor_id": "v-1", "tax_id": "DE1", "screened": True, "plan": "standard"}
    with otel_agents.agent("intake"):
        with otel_agents.handoff(
            to="provisioning", payload=summary, schema=VendorSummary, checks=RECEIVER_CHECKS
        ) as boundary:
            received = boundary.payload
        assert received is summary
    span = attrs(telemetry.span("handoff provisioning"))
    assert span[sc.HANDOFF_CHECKS_PASSED] == ("schema", "screened", "known_plan")
    assert span[sc.HANDOFF_CHECKS_FAILED] == ("explodes: check raised KeyError",)
    assert span[sc.HANDOFF_ACCEPTED] is False


def test_failed_declared_checks_reject_the_handoff(telemetry: Any) -> None:
    summary = {"vendor_id": "v-1", "screened": False, "plan": "gold"}
    checks = {k: v for k, v in RECEIVER_CHECKS.items() if k != "explodes"}
    with (
        otel_agents.agent("intake"),
        otel_agents.handoff(
            to="provisioning", payload=summary, schema=VendorSummary, checks=checks
        ) as boundary,
    ):
        assert boundary.failed_checks
    span = attrs(telemetry.span("handoff provisioning"))
    assert span[sc.HANDOFF_CHECKS_FAILED] == (
        "schema: $.tax_id: Field required",
        "screened",
        "known_plan: unknown plan",
    )
    assert span[sc.HANDOFF_ACCEPTED] is False


def test_a_strict_handoff_raises_and_the_receiver_never_starts(telemetry: Any) -> None:
    started: list[str] = []
    strict = otel_agents.handoff(
        to="provisioning", payload={"vendor_id": "v-1"}, schema=VendorSummary, strict=True
    )
    with otel_agents.agent("intake"), pytest.raises(HandoffRejected) as caught, strict:
        started.append("provisioning")
    assert started == []
    assert caught.value.failed_checks == ["schema: $.tax_id: Field required"]
    assert str(caught.value).startswith("handoff from 'intake' to 'provisioning' was rejected")
    span = attrs(telemetry.span("handoff provisioning"))
    assert span[sc.HANDOFF_ACCEPTED] is False
    assert span[sc.HANDOFF_REASON] == "failed checks: schema: $.tax_id: Field required"


def test_a_strict_handoff_that_passes_runs_normally(telemetry: Any) -> None:
    with (
        otel_agents.agent("intake"),
        otel_agents.handoff(
            to="provisioning",
            payload={"vendor_id": "v-1", "tax_id": "DE1"},
            schema=VendorSummary,
            strict=True,
        ),
        otel_agents.agent("provisioning"),
    ):
        pass
    assert attrs(telemetry.span("handoff provisioning"))[sc.HANDOFF_ACCEPTED] is True
    assert telemetry.span("invoke_agent provisioning").parent is not None
