"""Running the `otel-agents` command as users do: subprocesses against a real store that
traced programs, also run as subprocesses, wrote. (Helpers for the tests in this folder.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = Path(__file__).resolve().parent / "programs"
SCRIPT = Path(sys.executable).parent / "otel-agents"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def clean_env(store: Path, **extra: str) -> dict[str, str]:
    """The user's environment without our settings, colour hints or a forced width."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_") and k not in ("NO_COLOR", "COLUMNS", "FORCE_COLOR")
    }
    env["PYTHONPATH"] = str(ROOT)
    env["OTEL_AGENTS_STORE_PATH"] = str(store)
    env.update(extra)
    return env


def run_program(store: Path, *args: str, capture: str = "SPAN_ONLY", **env: str) -> list[str]:
    """Run the traced onboarding story; returns the run ids it printed."""
    result = subprocess.run(
        [sys.executable, str(PROGRAMS / "onboarding.py"), *args],
        env=clean_env(store, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=capture, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def cli(store: Path | None, *args: str, script: bool = False, **env: str) -> Result:
    """`otel-agents ARGS` (or `python -m otel_agents.cli ARGS`) with the store in the env."""
    command = [str(SCRIPT)] if script else [sys.executable, "-m", "otel_agents.cli"]
    environment = clean_env(store or Path("/nonexistent/otel-agents.db"), **env)
    result = subprocess.run(
        [*command, *args], env=environment, capture_output=True, text=True, timeout=120
    )
    return Result(result.returncode, result.stdout, result.stderr)


def copy_store(source: Path, target_dir: Path) -> Path:
    """A private copy of a store (and its WAL, if a writer left one) to tamper with."""
    target = target_dir / source.name
    for suffix in ("", "-wal"):
        side = source.with_name(source.name + suffix)
        if side.exists():
            shutil.copy(side, target.with_name(target.name + suffix))
    return target


@dataclass
class StoryStore:
    path: Path
    ok_run: str  # the onboarding story, content captured
    crashed_run: str  # the same story under another root agent, ending in an error
