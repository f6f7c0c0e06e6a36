"""The shared readers the adapters use on SDK models and plain mappings alike."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pydantic

from otel_agents.adapters.fields import (
    count,
    field_of,
    fields_of,
    integer,
    items,
    nonempty_text,
    number,
    text,
)


class Omit:  # the SDKs' sentinel for an unset parameter, matched by name
    pass


class Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")

    name: str
    size: int | None = None

    @property
    def shout(self) -> str:
        return self.name.upper()


class Plain:
    def __init__(self) -> None:
        self.name = "plain"

    @property
    def computed(self) -> int:
        return 7


def test_field_of_reads_mappings_models_and_objects() -> None:
    assert field_of({"a": 1}, "a") == 1
    assert field_of({"a": None}, "a", "d") is None  # present None is not absent
    assert field_of({}, "a", "d") == "d"
    assert field_of(MappingProxyType({"a": 2}), "a") == 2
    assert field_of(None, "a", "d") == "d"
    model = Model(name="m", extra_field=3)  # type: ignore[call-arg]
    assert field_of(model, "name") == "m"
    assert field_of(model, "size") is None
    assert field_of(model, "extra_field") == 3  # pydantic extras
    assert field_of(model, "missing", "d") == "d"  # no AttributeError from pydantic
    assert field_of(model, "shout") == "M"  # properties still read
    assert field_of(Plain(), "name") == "plain"
    assert field_of(Plain(), "computed") == 7
    assert field_of(Plain(), "missing", 0) == 0


def test_field_of_treats_the_not_given_sentinel_as_absent() -> None:
    assert field_of({"temperature": Omit()}, "temperature") is None
    assert field_of({"temperature": Omit()}, "temperature", 1.0) == 1.0


def test_fields_of_gives_a_mapping_for_every_kind() -> None:
    body: dict[str, Any] = {"a": 1}
    assert fields_of(body) is body
    assert dict(fields_of(None)) == {}
    model = Model(name="m", extra_field=3)  # type: ignore[call-arg]
    fields = fields_of(model)
    assert fields.get("name") == "m"
    assert fields.get("extra_field") == 3
    view = fields_of(Plain())
    assert view.get("computed") == 7
    assert view.get("missing", "d") == "d"


def test_value_readers() -> None:
    assert list(items([1, 2])) == [1, 2]
    assert list(items((1,))) == [1]
    assert list(items(x for x in range(3))) == []  # one-shot iterables are left alone
    assert list(items(None)) == []
    assert text("") == "" and text(3) is None
    assert nonempty_text("") is None and nonempty_text("a") == "a"
    assert integer(True) is None and integer(4) == 4 and integer(4.0) is None
    assert count(None) == 0 and count(False) == 0 and count(9) == 9
    assert number(2) == 2.0 and number(True) is None and number("1") is None
