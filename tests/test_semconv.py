"""The semconv registry, the files generated from it and the code stay in sync.

- the generated `otel_agents/semconv.py` and `semconv/docs/attributes.md` are up to date;
- the registry passes the generator's validation, and the validation catches broken YAML;
- every `otel_agents.*` name the package's code spells out is declared in the registry
  (code must use the generated constants instead of ad-hoc strings);
- the generated module exposes every registry name under the documented constant names.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "scripts" / "semconv_gen.py"
PACKAGE_DIR = ROOT / "otel_agents"
PREFIX = "otel_agents."

# Calls whose string argument names something that is not telemetry (a context key, a
# context variable, a logger), so it does not have to be in the registry.
NON_TELEMETRY_CALLS = frozenset({"create_key", "ContextVar", "getLogger"})


def _load_by_path(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look the module up while the class is created
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return _load_by_path("_semconv_gen_under_test", GENERATOR)


@pytest.fixture(scope="module")
def registry(gen: ModuleType) -> Any:
    loaded, problems = gen.load(ROOT)
    assert problems == [], "\n".join(problems)
    return loaded


@pytest.fixture(scope="module")
def constants() -> ModuleType:
    # By path, so this does not depend on (or run) the package's __init__.
    return _load_by_path("_otel_agents_semconv_under_test", PACKAGE_DIR / "semconv.py")


# -- (1) generated files are up to date ------------------------------------------------------


def test_generated_files_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, (
        "generated semconv files are stale or the registry is invalid; "
        f"run `python scripts/semconv_gen.py`\n{result.stderr}\n{result.stdout}"
    )


def test_check_reports_a_stale_file_with_a_diff(tmp_path: Path) -> None:
    root = _copy_registry(tmp_path)
    generated = root / "otel_agents" / "semconv.py"
    generated.write_text(generated.read_text(encoding="utf-8") + "EXTRA = 1\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check", "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "-EXTRA = 1" in result.stdout
    assert "otel_agents/semconv.py" in result.stderr


# -- (2) validation ----------------------------------------------------------------------------


def test_registry_is_valid(gen: ModuleType) -> None:
    _, problems = gen.load(ROOT)
    assert problems == []


def _copy_registry(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "semconv", root / "semconv")
    (root / "otel_agents").mkdir()
    shutil.copy(PACKAGE_DIR / "semconv.py", root / "otel_agents" / "semconv.py")
    return root


_ATTRIBUTE = """\
  - key: {key}
    type: {type}
    brief: A test attribute.
    stability: development
"""

BROKEN_REGISTRIES = {
    "wrong file format": (
        "file_format: definition/1\nattributes: []\n",
        "must start with 'file_format: definition/2'",
    ),
    "unknown section": (
        "file_format: definition/2\ngroups: []\n",
        "unknown top-level section 'groups'",
    ),
    "missing brief": (
        "file_format: definition/2\nattributes:\n"
        "  - key: otel_agents.test.value\n    type: int\n    stability: development\n",
        "attribute 'otel_agents.test.value': missing 'brief'",
    ),
    "missing stability": (
        "file_format: definition/2\nattributes:\n"
        "  - key: otel_agents.test.value\n    type: int\n    brief: A test attribute.\n",
        "attribute 'otel_agents.test.value': missing 'stability'",
    ),
    "unknown type": (
        "file_format: definition/2\nattributes:\n"
        + _ATTRIBUTE.format(key="otel_agents.test.value", type="float"),
        "type 'float' is not one of",
    ),
    "enum member without value": (
        "file_format: definition/2\nattributes:\n"
        "  - key: otel_agents.test.mode\n"
        "    type:\n      members:\n"
        "        - id: fast\n          brief: Fast.\n          stability: development\n"
        "    brief: A test enum.\n    stability: development\n",
        "attribute 'otel_agents.test.mode', member 'fast': missing 'value'",
    ),
    "key without our prefix": (
        "file_format: definition/2\nattributes:\n"
        + _ATTRIBUTE.format(key="agents.test.value", type="int"),
        "key 'agents.test.value' must start with 'otel_agents.'",
    ),
    "key not snake case": (
        "file_format: definition/2\nattributes:\n"
        + _ATTRIBUTE.format(key="otel_agents.test.BadKey", type="int"),
        "key 'otel_agents.test.BadKey' must be lowercase snake_case",
    ),
    "key is also a namespace": (
        "file_format: definition/2\nattributes:\n"
        + _ATTRIBUTE.format(key="otel_agents.run.id.kind", type="string"),
        "attribute 'otel_agents.run.id.kind' lies inside the namespace of attribute "
        "'otel_agents.run.id'",
    ),
    "duplicate across files": (
        "file_format: definition/2\nattributes:\n"
        + _ATTRIBUTE.format(key="otel_agents.run.id", type="string"),
        "attribute 'otel_agents.run.id' is already defined in semconv/model/",
    ),
    "dangling ref": (
        "file_format: definition/2\nevents:\n"
        "  - name: otel_agents.test\n    brief: A test event.\n    stability: development\n"
        "    attributes:\n      - ref: otel_agents.no.such.key\n",
        "event 'otel_agents.test': ref 'otel_agents.no.such.key' is not an attribute",
    ),
    "dangling refinement target": (
        "file_format: definition/2\nspan_refinements:\n"
        "  - id: otel_agents.test.refinement\n    ref: gen_ai.no_such.span\n"
        "    brief: A test refinement.\n    stability: development\n",
        "ref 'gen_ai.no_such.span' is not a span of the registry",
    ),
    "constant name collision": (
        "file_format: definition/2\nattributes:\n"
        + _ATTRIBUTE.format(key="otel_agents.error.type", type="string"),
        "gives the Python name 'ERROR_TYPE', already used by",
    ),
    # What Weaver's `registry check` enforces on this registry (see the generator's docstring).
    "internal group with a brief": (
        "file_format: definition/2\nattribute_groups:\n"
        "  - id: otel_agents.test.group\n    visibility: internal\n"
        "    brief: Internal groups have none.\n"
        "    attributes:\n      - ref: otel_agents.run.id\n        requirement_level: required\n",
        "an internal attribute group has no 'brief'",
    ),
    "signal ref without requirement level": (
        "file_format: definition/2\nevents:\n"
        "  - name: otel_agents.test\n    brief: A test event.\n    stability: development\n"
        "    attributes:\n      - ref: otel_agents.run.id\n",
        "ref 'otel_agents.run.id' needs a 'requirement_level'",
    ),
    "refinement of the renamed inference span type": (
        "file_format: definition/2\nspan_refinements:\n"
        "  - id: otel_agents.test.refinement\n    ref: gen_ai.inference.client\n"
        "    brief: A test refinement.\n    stability: development\n",
        "ref 'gen_ai.inference.client' is not a span of the registry or of the dependency",
    ),
    "refinement of a removed upstream metric": (
        "file_format: definition/2\nmetric_refinements:\n"
        "  - id: otel_agents.test.refinement\n    ref: gen_ai.client.token.usage\n"
        "    brief: A test refinement.\n    stability: development\n",
        "ref 'gen_ai.client.token.usage' is not a metric of the registry or of the dependency",
    ),
    "ref to a deprecated upstream attribute": (
        "file_format: definition/2\nevents:\n"
        "  - name: otel_agents.test\n    brief: A test event.\n    stability: development\n"
        "    attributes:\n      - ref: gen_ai.token.type\n        requirement_level: required\n",
        "ref 'gen_ai.token.type' is deprecated upstream",
    ),
    "bad requirement level": (
        "file_format: definition/2\nevents:\n"
        "  - name: otel_agents.test\n    brief: A test event.\n    stability: development\n"
        "    attributes:\n      - ref: otel_agents.run.id\n        requirement_level: must\n",
        "requirement_level 'must' is not one of",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_REGISTRIES))
def test_validation_rejects(gen: ModuleType, tmp_path: Path, case: str) -> None:
    text, expected = BROKEN_REGISTRIES[case]
    root = _copy_registry(tmp_path)
    (root / "semconv" / "model" / "zz_test.yaml").write_text(text, encoding="utf-8")
    _, problems = gen.load(root)
    assert any(expected in problem for problem in problems), "\n".join(problems)
    # Every message names the file it is about.
    assert all(problem.startswith("semconv/") for problem in problems), problems


def test_weaver_scans_every_yaml_file_under_the_registry_root(
    gen: ModuleType, tmp_path: Path
) -> None:
    # The upstream snapshot as YAML would be loaded by Weaver as part of our registry.
    root = _copy_registry(tmp_path)
    snapshot = json.loads((root / gen.UPSTREAM_PATH).read_text(encoding="utf-8"))
    stray = root / "semconv" / "upstream" / "gen-ai.yaml"
    stray.write_text(yaml.safe_dump(snapshot), encoding="utf-8")
    (root / "semconv" / ".hidden").mkdir()
    (root / "semconv" / ".hidden" / "skipped.yaml").write_text("not: a definition\n")
    _, problems = gen.load(root)
    assert any(
        p.startswith("semconv/upstream/gen-ai.yaml: Weaver loads every YAML file") for p in problems
    ), problems
    assert any("semconv/upstream/gen-ai.yaml: must start with 'file_format" in p for p in problems)
    assert not any(".hidden" in p for p in problems), problems  # Weaver skips hidden entries


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "schema_url: https://opentelemetry.io/schemas/gen-ai-dev/1.42.0-dev",
            "schema_url: https://opentelemetry.io/schemas/1.41.0",
            "differs from the snapshot's 'https://opentelemetry.io/schemas/gen-ai-dev/1.42.0-dev'",
        ),
        (
            "archive/024a4f944a1291fcb627c9c47da69e79868dd15e.zip",
            "archive/refs/heads/main.zip",
            "is not pinned to the snapshot's commit",
        ),
    ],
)
def test_manifest_dependency_must_agree_with_the_snapshot(
    gen: ModuleType, tmp_path: Path, old: str, new: str, expected: str
) -> None:
    root = _copy_registry(tmp_path)
    manifest = root / gen.MANIFEST_PATH
    text = manifest.read_text(encoding="utf-8")
    assert old in text
    manifest.write_text(text.replace(old, new), encoding="utf-8")
    _, problems = gen.load(root)
    assert any(p.startswith("semconv/manifest.yaml") and expected in p for p in problems), problems


def test_invalid_registry_fails_the_command(tmp_path: Path) -> None:
    root = _copy_registry(tmp_path)
    text, _ = BROKEN_REGISTRIES["dangling ref"]
    (root / "semconv" / "model" / "zz_test.yaml").write_text(text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check", "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "semconv/model/zz_test.yaml" in result.stderr
    assert "otel_agents.no.such.key" in result.stderr


# -- (3) code uses only registry names ---------------------------------------------------------


def _is_module_path(package_dir: Path, value: str, namespaces: set[str]) -> bool:
    """`otel_agents.core.tool` names a module of the package: an existing module file,
    or a module of an existing subpackage (`otel_agents.adapters.openai` may be
    imported lazily and written later), unless the subpackage's name is also a registry
    namespace."""
    parts = value.split(".")
    if parts[0] != package_dir.name or len(parts) < 2:
        return False
    path = package_dir.joinpath(*parts[1:])
    if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
        return True
    parent = path.parent
    return (
        len(parts) > 2
        and parts[1] not in namespaces
        and (parent / "__init__.py").is_file()
        and parts[-1].isidentifier()
    )


def _docstring_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                yield body[0].value


def _non_telemetry_arguments(tree: ast.AST) -> Iterator[ast.AST]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in NON_TELEMETRY_CALLS:
                yield from node.args


def undeclared_names(package_dir: Path, declared: set[str]) -> list[str]:
    """`otel_agents.*` string literals in the package's code that the registry lacks.

    Skipped: the generated `semconv.py`, docstrings, module paths (`otel_agents.lifecycle`,
    `otel_agents.adapters.openai`), strings with whitespace or `:` (prose, entry
    points) and the names of context keys, context variables and loggers.
    """
    namespaces = {name.split(".")[1] for name in declared}
    offenders: list[str] = []
    for path in sorted(package_dir.rglob("*.py")):
        if path == package_dir / "semconv.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skipped = {id(node) for node in _docstring_nodes(tree)}
        skipped |= {id(node) for node in _non_telemetry_arguments(tree)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            value = node.value
            if not value.startswith(PREFIX) or id(node) in skipped:
                continue
            if ":" in value or any(c.isspace() for c in value):
                continue
            if _is_module_path(package_dir, value, namespaces) or value in declared:
                continue
            rel = path.relative_to(package_dir.parent).as_posix()
            offenders.append(f"{rel}:{node.lineno}: {value!r}")
    return offenders


def _declared_names(registry: Any) -> set[str]:
    return (
        {a.key for a in registry.attributes}
        | {m.name for m in registry.metrics}
        | {e.name for e in registry.events}
        | {s.type for s in registry.spans}
    )


def test_code_uses_only_registry_names(registry: Any) -> None:
    offenders = undeclared_names(PACKAGE_DIR, _declared_names(registry))
    assert not offenders, (
        "these otel_agents.* names are not declared in semconv/model/; add them to the "
        "registry and use the constants from otel_agents.semconv:\n  " + "\n  ".join(offenders)
    )


def test_drift_scan_catches_undeclared_literals(tmp_path: Path, registry: Any) -> None:
    package = tmp_path / "otel_agents"
    (package / "core").mkdir(parents=True)
    (package / "__init__.py").write_text('"""otel_agents.not_checked: docstring."""\n')
    (package / "lifecycle.py").write_text("")
    (package / "adapters").mkdir()
    (package / "adapters" / "__init__.py").write_text("")
    (package / "core" / "__init__.py").write_text("")
    (package / "core" / "tool.py").write_text(
        textwrap.dedent(
            """\
            '''Tools.'''
            from opentelemetry import context

            KEY = context.create_key("otel_agents.core.ledger")
            MODULE = "otel_agents.lifecycle"
            LAZY = "otel_agents.adapters.openai"
            ENTRY = "otel_agents.adapters.entry_point:AgentsInstrumentor"
            MESSAGE = "otel_agents.tool needs a callable"
            GOOD = "otel_agents.run.id"
            METRIC = "otel_agents.tool.calls"

            def record(span):
                span.set_attribute("otel_agents.tool.call.atempt", 1)
                span.add_event("otel_agents.anomalie")
            """
        )
    )
    offenders = undeclared_names(package, _declared_names(registry))
    assert offenders == [
        "otel_agents/core/tool.py:13: 'otel_agents.tool.call.atempt'",
        "otel_agents/core/tool.py:14: 'otel_agents.anomalie'",
    ]


# -- (4) the generated module exposes every registry name --------------------------------------


def _constant_values(module: ModuleType) -> dict[str, object]:
    return {name: value for name, value in vars(module).items() if name.isupper()}


def test_constants_cover_every_attribute(registry: Any, constants: ModuleType) -> None:
    values = _constant_values(constants)
    for attribute in registry.attributes:
        expected = attribute.key[len(PREFIX) :].upper().replace(".", "_")
        assert values.get(expected) == attribute.key, attribute.key
    for attribute in registry.upstream_attributes:
        expected = attribute.key.upper().replace(".", "_")
        assert values.get(expected) == attribute.key, attribute.key


def test_constants_cover_every_enum(registry: Any, constants: ModuleType) -> None:
    for attribute in [*registry.attributes, *registry.upstream_attributes]:
        if attribute.type != "enum":
            continue
        cls = getattr(constants, attribute.values_class)
        for member in attribute.members:
            assert getattr(cls, member.id.upper().replace(".", "_")) == member.value


def test_constants_cover_metrics_and_events(registry: Any, constants: ModuleType) -> None:
    values = _constant_values(constants)
    for metric in [*registry.metrics, *registry.upstream_metrics]:
        short = metric.name[len(PREFIX) :] if not metric.upstream else metric.name
        name = "METRIC_" + short.upper().replace(".", "_")
        assert values.get(name) == metric.name
        assert constants.METRIC_UNITS[metric.name] == metric.unit
        if metric.buckets is not None:
            assert constants.METRIC_BUCKETS[metric.name] == metric.buckets
    for event in [*registry.events, *registry.upstream_events]:
        short = event.name[len(PREFIX) :] if not event.upstream else event.name
        assert values.get("EVENT_" + short.upper().replace(".", "_")) == event.name


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HANDOFF_FROM", "otel_agents.handoff.from"),
        ("RUN_COST_USD", "otel_agents.run.cost.usd"),
        ("ANOMALY", "otel_agents.anomaly"),
        ("GEN_AI_TOOL_CALL_ID", "gen_ai.tool.call.id"),
        ("ERROR_TYPE", "error.type"),
        ("METRIC_LLM_COST", "otel_agents.llm.cost"),
        ("METRIC_GEN_AI_CLIENT_TOKEN_USAGE", "gen_ai.client.token.usage"),
        ("EVENT_ANOMALY", "otel_agents.anomaly"),
    ],
)
def test_documented_constant_names(constants: ModuleType, name: str, value: str) -> None:
    assert getattr(constants, name) == value


def test_documented_values_classes(constants: ModuleType) -> None:
    assert constants.PolicyVerdictValues.ALLOW == "allow"
    assert constants.GenAiOperationNameValues.INVOKE_WORKFLOW == "invoke_workflow"
    assert constants.GenAiTokenTypeValues.OUTPUT == "output"
    assert constants.GenAiProviderNameValues.AZURE_AI_OPENAI == "azure.ai.openai"
    assert constants.METRIC_BUCKETS[constants.METRIC_GEN_AI_CLIENT_OPERATION_DURATION][-1] == 81.92


def test_generated_module_has_no_third_party_imports() -> None:
    tree = ast.parse((PACKAGE_DIR / "semconv.py").read_text(encoding="utf-8"))
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    imported |= {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert imported <= {"__future__", "typing"}
