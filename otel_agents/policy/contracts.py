"""Tool contracts and handoff checks.

A contract says what a tool accepts and returns (JSON Schema or a pydantic model), how it
fails, whether it can be undone, how far it reaches and how to roll it back:

    @otel_agents.tool(contract=ToolContract(
        input=CreateAccount,                      # a pydantic model ...
        output={"type": "object", "required": ["account_id"]},   # ... or JSON Schema
        reversible=False, impact_scope="vendor_account",
        rollback="deactivate_account(account_id)",
        failure_modes=["DuplicateAccount"],
    ))
    def create_account(vendor_id: str, plan: str) -> dict: ...

The policy gate checks calls against it: bad arguments are the agent's fault
(`input_violation`), a bad result is the tool's (`output_violation`). Schemas are compiled
when the contract is made, so a broken schema fails at import, not in production.
Violation messages name the place and the rule that failed, never the offending values.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any

from otel_agents.errors import PolicyError

# A declared quantity: a number, the name of an argument that holds it, or a function of
# the arguments (a mapping of parameter name to value).
Declared = int | float | str | Callable[[Mapping[str, Any]], Any] | None

_MAX_DETAIL = 200


class SchemaCheck:
    """One compiled schema: `violation(value)` is None when the value fits."""

    def violation(self, value: Any) -> str | None:
        raise NotImplementedError


class _JsonSchemaCheck(SchemaCheck):
    def __init__(self, schema: Mapping[str, Any]) -> None:
        try:
            import jsonschema
        except ImportError:
            raise PolicyError(
                "JSON Schema contracts need jsonschema: pip install 'otel-agents[contracts]'"
            ) from None
        validator_class = jsonschema.validators.validator_for(schema)
        try:
            validator_class.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise PolicyError(f"invalid JSON Schema in a contract: {exc.message}") from None
        self._validator = validator_class(schema)
        self._best_match = jsonschema.exceptions.best_match
        self._fits = compile_fast_check(schema)

    def violation(self, value: Any) -> str | None:
        value = _plain(value)
        if self._fits is not None and self._fits(value):
            return None  # the fast check only passes what jsonschema would pass
        error = self._best_match(self._validator.iter_errors(value))
        if error is None:
            return None
        return _describe_json_error(error)


class _PydanticCheck(SchemaCheck):
    """A pydantic model class, or any type pydantic can validate (`list[Account]`)."""

    def __init__(self, model: Any) -> None:
        self._model = model if hasattr(model, "model_validate") else None
        if self._model is None:
            try:
                import pydantic
            except ImportError:
                raise PolicyError(f"contract type {model!r} needs pydantic installed") from None
            try:
                self._adapter = pydantic.TypeAdapter(model)
            except Exception as exc:
                raise PolicyError(f"pydantic cannot validate {model!r}: {exc}") from None

    def violation(self, value: Any) -> str | None:
        model = self._model
        try:
            if model is None:
                self._adapter.validate_python(value)
            elif not isinstance(value, model):
                model.model_validate(value)
        except Exception as exc:
            return _describe_pydantic_error(exc)
        return None


# -- a fast path for everyday JSON Schemas ---------------------------------------------
#
# jsonschema walks the schema anew on every call (tens of µs for a small object), and the
# gate checks every call of a tool. Most tool schemas use a few plain keywords, so those
# are compiled here into nested Python checks. The fast check is one-sided by design: it
# may only pass a value that jsonschema would pass. Anything it does not pass goes to
# jsonschema, which decides and words the message; a schema using any keyword not below
# gets no fast check at all.

FastCheck = Callable[[Any], bool]

_FAST_DRAFT = "https://json-schema.org/draft/2020-12/schema"  # jsonschema's default
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment", "$schema"})
# Drafts whose keywords below mean the same (draft 4 differs in `exclusiveMinimum`).
_FAST_DRAFTS = frozenset(
    {
        "http://json-schema.org/draft-07/schema#",
        "http://json-schema.org/draft-07/schema",
        "https://json-schema.org/draft/2019-09/schema",
        "https://json-schema.org/draft/2020-12/schema",
    }
)
_TYPES: dict[str, FastCheck] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: type(v) is int,  # jsonschema also takes 1.0: it decides those
    "number": lambda v: type(v) in (int, float),
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
}
_BOUNDS: dict[str, Callable[[Any, Any], bool]] = {  # keyword -> passes(value, limit)
    "minimum": lambda v, m: not v < m,
    "maximum": lambda v, m: not v > m,
    "exclusiveMinimum": lambda v, m: not v <= m,
    "exclusiveMaximum": lambda v, m: not v >= m,
}
_SIZES: dict[str, tuple[type[Sized], Callable[[int, int], bool]]] = {
    "minLength": (str, lambda n, m: n >= m),
    "maxLength": (str, lambda n, m: n <= m),
    "minItems": (list, lambda n, m: n >= m),
    "maxItems": (list, lambda n, m: n <= m),
}


class _Unsupported(Exception):
    """The schema uses something the fast path does not compile."""


def compile_fast_check(schema: Any) -> FastCheck | None:
    """A fast, one-sided check for a JSON Schema, or None if the schema is out of reach."""
    if isinstance(schema, Mapping) and schema.get("$schema", _FAST_DRAFT) not in _FAST_DRAFTS:
        return None
    try:
        return _fast(schema)
    except (_Unsupported, re.error):  # a pattern Python cannot compile: jsonschema judges it
        return None


def _fast(schema: Any) -> FastCheck:
    if schema is True or schema == {}:
        return lambda value: True
    if not isinstance(schema, Mapping):
        raise _Unsupported
    checks = [_keyword(k, a, schema) for k, a in schema.items() if k not in _ANNOTATIONS]
    return checks[0] if len(checks) == 1 else _all_of(checks)


def _all_of(checks: list[FastCheck]) -> FastCheck:
    # Plain loops: a generator per check costs more than the check.
    def fits(value: Any) -> bool:
        for check in checks:  # noqa: SIM110
            if not check(value):
                return False
        return True

    return fits


def _keyword(keyword: str, argument: Any, schema: Mapping[str, Any]) -> FastCheck:
    if keyword == "type":
        names = [argument] if isinstance(argument, str) else argument
        if not isinstance(names, list) or not all(name in _TYPES for name in names):
            raise _Unsupported
        tests = [_TYPES[name] for name in names]
        return tests[0] if len(tests) == 1 else lambda v: any(test(v) for test in tests)
    if keyword in ("enum", "const"):
        # Strings only: jsonschema's equality tells True from 1, Python's does not.
        accepted = argument if keyword == "enum" else [argument]
        if not isinstance(accepted, list) or not all(isinstance(a, str) for a in accepted):
            raise _Unsupported
        allowed = frozenset(accepted)
        return lambda v: isinstance(v, str) and v in allowed
    if keyword in _BOUNDS and type(argument) in (int, float):
        passes = _BOUNDS[keyword]
        return lambda v: type(v) not in (int, float) or passes(v, argument)
    if keyword in _SIZES and type(argument) is int:
        kind, fits = _SIZES[keyword]
        return lambda v: not isinstance(v, kind) or fits(len(v), argument)
    if keyword == "pattern" and isinstance(argument, str):
        search = re.compile(argument).search  # jsonschema uses re.search too
        return lambda v: not isinstance(v, str) or search(v) is not None
    if keyword == "required" and isinstance(argument, list):
        names = tuple(argument)
        return lambda v: not isinstance(v, dict) or all(name in v for name in names)
    if keyword == "properties" and isinstance(argument, Mapping):
        return _properties(argument)
    if keyword == "additionalProperties":
        return _additional(argument, schema)
    if keyword == "items" and not isinstance(argument, list):
        each = _fast(argument)
        return lambda v: not isinstance(v, list) or all(map(each, v))
    raise _Unsupported


def _properties(properties: Mapping[str, Any]) -> FastCheck:
    checks = {name: _fast(sub) for name, sub in properties.items()}

    def fits(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        for name, check in checks.items():  # noqa: SIM110 (a loop: see _all_of)
            if name in value and not check(value[name]):
                return False
        return True

    return fits


def _additional(argument: Any, schema: Mapping[str, Any]) -> FastCheck:
    if "patternProperties" in schema:
        raise _Unsupported
    known = frozenset(schema.get("properties") or ())
    each = _fast(argument) if argument is not False else None

    def fits(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        extra = [key for key in value if key not in known]
        if each is None:
            return not extra
        return all(each(value[key]) for key in extra)

    return fits


def compile_schema(schema: Any) -> SchemaCheck | None:
    """A `SchemaCheck` for a JSON Schema (a mapping) or a pydantic model or type."""
    if schema is None:
        return None
    if isinstance(schema, SchemaCheck):
        return schema
    if isinstance(schema, Mapping):
        return _JsonSchemaCheck(schema)
    if isinstance(schema, type) or hasattr(schema, "__origin__"):
        return _PydanticCheck(schema)
    raise PolicyError(f"a contract schema must be a JSON Schema mapping or a type, got {schema!r}")


@dataclass(frozen=True)
class ToolContract:
    """What a tool promises. Every field is optional.

    `reversible` and `impact_scope` fill in the tool's own declaration when that is absent.
    `records` and `cost_usd` say how many records a call touches and what it costs: a
    number, the name of an argument (its length, or its value if it is a number), or a
    function of the arguments mapping.
    """

    input: Any = None
    output: Any = None
    failure_modes: Sequence[str] = ()
    reversible: bool | None = None
    impact_scope: str | None = None
    rollback: str | None = None
    records: Declared = None
    cost_usd: Declared = None
    input_check: SchemaCheck | None = field(init=False, default=None, repr=False, compare=False)
    output_check: SchemaCheck | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "failure_modes", tuple(self.failure_modes))
        object.__setattr__(self, "input_check", compile_schema(self.input))
        object.__setattr__(self, "output_check", compile_schema(self.output))


def undeclared_failure(contract: ToolContract, exc: BaseException) -> str | None:
    """How `exc` breaks the contract, or None if it does not.

    A contract that lists failure modes promises the tool fails only in those ways; an
    exception of another kind is the tool's fault. A mode names an exception class (plain
    or qualified name) and covers its subclasses: `OSError` covers `ConnectionError`.
    """
    declared = contract.failure_modes
    if not declared:
        return None
    for kind in type(exc).__mro__:
        if kind.__name__ in declared or f"{kind.__module__}.{kind.__qualname__}" in declared:
            return None
    detail = (
        f"raised {type(exc).__name__}, not one of its declared failure modes "
        f"({', '.join(declared)})"
    )
    return detail[:_MAX_DETAIL]


# -- declared quantities ---------------------------------------------------------------


def declared_records(declared: Declared, arguments: Mapping[str, Any] | None) -> int | None:
    value = _resolve(declared, arguments)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, Sized) and not isinstance(value, (str, bytes)):
        return len(value)
    return 1  # one scalar identifier: one record


def declared_cost(declared: Declared, arguments: Mapping[str, Any] | None) -> float | None:
    value = _resolve(declared, arguments)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _resolve(declared: Declared, arguments: Mapping[str, Any] | None) -> Any:
    if declared is None or isinstance(declared, (int, float)):
        return declared
    if isinstance(declared, str):
        return arguments.get(declared) if arguments is not None else None
    return declared(arguments or {})


# -- handoff checks --------------------------------------------------------------------

HandoffCheck = Callable[[Any], Any]


def run_handoff_checks(
    record: Callable[[str, bool, str | None], Any],
    payload: Any,
    checks: Mapping[str, HandoffCheck] | None,
    schema: SchemaCheck | None,
) -> None:
    """Run the receiver's declared checks on a payload and `record(name, passed, detail)`.

    A check returns a bool, or `(bool, detail)`; a check that raises has failed, with the
    exception type as detail. The schema, if any, is the check named `schema`.
    """
    if schema is not None:
        violation = schema.violation(payload)
        record("schema", violation is None, violation)
    for name, check in (checks or {}).items():
        try:
            outcome = check(payload)
        except Exception as exc:
            record(name, False, f"check raised {type(exc).__name__}")
            continue
        if isinstance(outcome, tuple) and len(outcome) == 2:
            record(name, bool(outcome[0]), str(outcome[1]) if outcome[1] else None)
        else:
            record(name, bool(outcome), None)


# -- messages without values -----------------------------------------------------------


def _plain(value: Any) -> Any:
    """Pydantic models and dataclasses as plain data, for JSON Schema."""
    if type(value) is dict:  # arguments and most results: nothing to convert
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _location(path: Sequence[Any]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _describe_json_error(error: Any) -> str:
    where = _location(list(error.absolute_path))
    kind = error.validator
    if kind in ("required", "additionalProperties", "dependentRequired"):
        detail = error.message  # names keys, not values
    elif kind == "type":
        detail = f"expected type {error.validator_value}"
    elif kind in ("enum", "const"):
        detail = "not one of the allowed values"
    else:
        detail = f"fails {kind!r} {error.validator_value!r}"
    return f"{where}: {detail}"[:_MAX_DETAIL]


def _describe_pydantic_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return f"{type(exc).__name__}"
    try:
        first = errors(include_input=False, include_url=False)[0]
    except Exception:
        return f"{type(exc).__name__}"
    return f"{_location(first.get('loc', ()))}: {first.get('msg', 'invalid')}"[:_MAX_DETAIL]
