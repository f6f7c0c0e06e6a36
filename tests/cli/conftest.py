"""The story store every CLI test reads: written once per session by traced programs."""

from __future__ import annotations

import pytest
from clitools import StoryStore, run_program


@pytest.fixture(scope="session")
def story(tmp_path_factory: pytest.TempPathFactory) -> StoryStore:
    path = tmp_path_factory.mktemp("story") / "traces.db"
    [ok_run] = run_program(path)
    [crashed_run] = run_program(path, "--crash", "--agent", "nightly-import")
    return StoryStore(path, ok_run, crashed_run)
