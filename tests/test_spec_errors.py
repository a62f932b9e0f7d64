"""Broken mapping files fail with exact, located messages (tests/spec_errors/expected.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mapper.engine.lint import lint

HERE = Path(__file__).parent / "spec_errors"
EXPECTED = yaml.safe_load((HERE / "expected.yaml").read_text())


def test_every_bad_file_has_an_expectation() -> None:
    files = {p.name for p in HERE.glob("*.yaml")} - {"expected.yaml"}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_mapping_fails_with_exact_message(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE)  # file names in messages are as given, relative to here
    report = lint(name)
    assert not report.ok
    assert report.problems == EXPECTED[name]
