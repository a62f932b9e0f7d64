"""Data-driven mapping tests: every case under tests/mappings/<mapping>/<kind>/*.yaml.

A case holds an ``input`` and either
* ``expect``: JMESPath expressions over the output and the values they must give (the semantic
  check), plus a JSON snapshot of the whole output, which must also validate against the OpenAI
  schema for what it is; or
* ``error``: the error class, the input path (none for an ``UpstreamError``, which has a
  ``status`` instead) and a fragment of the message a bad input must give (and, optionally, the id
  of the rule that must report it).

``options`` sets mapping options for the case. ``left_out`` lists what the conversion must report
as left out on purpose (``Context.left_out``), also before an error; a case without it must leave
nothing out.

A snapshot alone proves nothing, so every case that converts has ``expect`` assertions too.
``MAPPER_CASE=tests/mappings/openai-chat/request/stream.yaml pytest tests/test_mapping_fixtures.py``
runs one case.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jmespath
import pytest
import yaml

from mapper.engine import errors, load_mapping
from mapper.engine.context import deterministic_context
from mapper.engine.coverage import API_SCHEMAS
from support.schemas import assert_valid
from support.snapshots import BodyLines

ROOT = Path(__file__).parent / "mappings"
KINDS = ("request", "response", "error")


def _cases() -> list[Path]:
    only = os.environ.get("MAPPER_CASE")
    cases = sorted(p for kind in KINDS for p in ROOT.glob(f"*/{kind}/*.yaml"))
    if only:
        cases = [p for p in cases if str(p).endswith(only) or only in str(p)]
    return cases


CASES = _cases()


def _case_id(path: Path) -> str:
    return f"{path.parent.parent.name}.{path.parent.name}.{path.stem}"


_MAPPINGS: dict[tuple[str, str], Any] = {}


def _mapping(mapping_id: str, options: dict[str, Any] | None = None) -> Any:
    key = (mapping_id, repr(sorted((options or {}).items())))
    if key not in _MAPPINGS:
        _MAPPINGS[key] = load_mapping(mapping_id, options=options)
    return _MAPPINGS[key]


def _convert(mapping: Any, kind: str, case: dict[str, Any], ctx: Any) -> Any:
    if kind == "request":
        return mapping.convert_request(case["input"], ctx=ctx)
    if kind == "response":
        return mapping.convert_response(case["input"], request=case.get("request"), ctx=ctx)
    return mapping.convert_error(case["input"], status=case["status"], ctx=ctx)


def _output_schema(mapping: Any, kind: str) -> str:
    if kind == "request":
        return API_SCHEMAS[mapping.to_api]["request"]
    if kind == "response":
        return API_SCHEMAS[mapping.from_api]["response"]
    return API_SCHEMAS[mapping.from_api]["error"]


def assert_plain_json(value: Any, path: str = "$") -> None:
    """Only JSON's own types: no loader nodes, tuples or shared mapping objects leak out."""
    kind = type(value)
    assert kind in (dict, list, str, int, float, bool, type(None)), f"{path} is a {kind.__name__}"
    if kind is dict:
        for key, item in value.items():
            assert type(key) is str, f"{path} has a non-string key {key!r}"
            assert_plain_json(item, f"{path}.{key}")
    elif kind is list:
        for index, item in enumerate(value):
            assert_plain_json(item, f"{path}[{index}]")


def test_there_are_cases() -> None:
    assert CASES, f"no fixtures found under {ROOT} (MAPPER_CASE={os.environ.get('MAPPER_CASE')})"


@pytest.mark.parametrize("path", CASES, ids=[_case_id(p) for p in CASES])
def test_fixture(path: Path, snapshot: Any) -> None:
    case = yaml.safe_load(path.read_text())
    mapping = _mapping(path.parent.parent.name, case.get("options"))
    kind = path.parent.name
    assert case.get("description"), "every case says what it shows"
    ctx = deterministic_context()
    if "error" in case:
        expected = case["error"]
        with pytest.raises(getattr(errors, expected["class"])) as caught:
            _convert(mapping, kind, case, ctx)
        assert getattr(caught.value, "json_path", None) == expected.get("path")
        assert expected["contains"] in caught.value.message
        if "rule" in expected:
            assert caught.value.rule == expected["rule"]
        if "status" in expected:
            assert caught.value.status == expected["status"]
        assert [what for what, _ in ctx.left_out or ()] == case.get("left_out", []), \
            "what the conversion left out"
        return

    output = _convert(mapping, kind, case, ctx)
    assert [what for what, _ in ctx.left_out or ()] == case.get("left_out", []), \
        "what the conversion left out"
    assert_plain_json(output)
    assert_valid(_output_schema(mapping, kind), output)
    assert case.get("expect"), "a converting case needs semantic assertions, not just a snapshot"
    for expression, wanted in case["expect"].items():
        got = jmespath.search(expression, output)
        assert got == wanted, f"{expression}: expected {wanted!r}, got {got!r}"
    assert output == snapshot(extension_class=BodyLines)
