"""A test missing a tool skips on a developer's machine and fails on CI (tests/procs.py `missing`)."""

from __future__ import annotations

import pytest

from tests.procs import missing


def test_a_missing_tool_fails_on_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        missing("jsonnet is not installed")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        missing("jsonnet is not installed")
