"""Post-import hooks without wrapt: run once the module is executed, once, and never into
the import."""

from __future__ import annotations

import importlib
import importlib.resources
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from otel_agents.import_hooks import when_imported


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh package on sys.path: `hooked_pkg` with a submodule `client`."""
    root = tmp_path / "hooked_pkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "client.py").write_text("VALUE = 42\n\ndef answer():\n    return VALUE\n")
    (root / "data.txt").write_text("resource")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "hooked_pkg"
    for name in [m for m in sys.modules if m.startswith("hooked_pkg")]:
        del sys.modules[name]


def test_a_hook_runs_once_the_module_is_executed_and_only_once(package: str) -> None:
    seen: list[ModuleType] = []
    when_imported(f"{package}.client", seen.append)
    assert seen == []
    module = importlib.import_module(f"{package}.client")
    assert seen == [module] and module.VALUE == 42  # run after the module's code
    importlib.reload(module)
    assert seen == [module]


def test_a_hook_for_an_imported_module_runs_at_once(package: str) -> None:
    module = importlib.import_module(f"{package}.client")
    seen: list[ModuleType] = []
    when_imported(f"{package}.client", seen.append)
    assert seen == [module]


def test_the_module_keeps_its_loader_s_abilities(package: str) -> None:
    when_imported(f"{package}.client", lambda module: None)
    module = importlib.import_module(f"{package}.client")
    assert "def answer" in inspect.getsource(module)  # the loader's get_source
    assert importlib.resources.files(package).joinpath("data.txt").read_text() == "resource"


def test_a_failing_import_leaves_the_hook_waiting(package: str, tmp_path: Path) -> None:
    broken = tmp_path / package / "flaky.py"
    broken.write_text("raise RuntimeError('not yet')\n")
    seen: list[ModuleType] = []
    when_imported(f"{package}.flaky", seen.append)
    with pytest.raises(RuntimeError, match="not yet"):
        importlib.import_module(f"{package}.flaky")
    assert seen == []
    broken.write_text("OK = True\n")
    importlib.invalidate_caches()
    module = importlib.import_module(f"{package}.flaky")
    assert seen == [module]


def test_a_failing_hook_is_reported_not_raised(
    package: str, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(module: ModuleType) -> None:
        raise ValueError("hook bug")

    seen: list[ModuleType] = []
    when_imported(f"{package}.client", broken)
    when_imported(f"{package}.client", seen.append)
    module = importlib.import_module(f"{package}.client")  # does not raise
    assert seen == [module]
    assert any("import hook for hooked_pkg.client" in r.getMessage() for r in caplog.records)
