"""The adapter registry finds installed clients without importing them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from otel_agents.adapters import ADAPTERS, _installed


@pytest.mark.parametrize(
    ("module", "found"),
    [
        ("json", True),
        ("json.decoder", True),  # a submodule that is a .py file
        ("email.mime", True),  # a subpackage
        ("json.no_such_module", False),
        ("no_such_package.client", False),
    ],
)
def test_installed_modules_are_found(module: str, found: bool) -> None:
    assert _installed(module) is found


def test_finding_a_dotted_client_imports_none_of_its_packages() -> None:
    """botocore's `__init__` costs instrument() tens of milliseconds: finding whether
    `botocore.client` is installed must not import it (nor `google` for `google.genai`)."""
    code = (
        "import sys\n"
        "from otel_agents.adapters import ADAPTERS, _installed\n"
        "dotted = [a.client_module for a in ADAPTERS if '.' in a.client_module]\n"
        "assert dotted, 'no dotted client module to check'\n"
        "print([_installed(m) for m in dotted])\n"
        "print(sorted({m.split('.')[0] for m in dotted} & set(sys.modules)))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert output[1] == "[]", output


def test_the_registry_names_dotted_client_modules() -> None:
    assert any("." in adapter.client_module for adapter in ADAPTERS)


def test_instrument_imports_no_client_nor_wrapt() -> None:
    """`instrument()` patches clients when the application imports them: before that it
    imports none of them, nor wrapt (and with it asyncio), which only patching needs, nor
    `importlib.abc` (with `importlib.resources`, `zipfile`, `tempfile`) for its import hooks,
    nor `hashlib` (with OpenSSL) for argument fingerprints: start-up cost, counted."""
    code = (
        "import sys\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "import otel_agents\n"
        "otel_agents.instrument(tracer_provider=TracerProvider(), configure_sdk=False)\n"
        "heavy = ('wrapt', 'asyncio', 'openai', 'anthropic', 'botocore', 'mcp', 'agents',\n"
        "         'importlib.abc', 'hashlib')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
    )
    env = {**os.environ, "OTEL_AGENTS_STORE": "off"}
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.splitlines()
    assert output[-1] == "[]", output
