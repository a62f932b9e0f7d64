"""engine/coverage.py: which root fields rules read, and what the source schema leaves unaccounted."""

from __future__ import annotations

from mapper.engine.coverage import document_reads, gaps, rule_reads, schema_properties
from support.rules import reads


def test_a_rule_reads_what_its_ops_read_while_the_scope_is_the_root() -> None:
    assert reads("model") == {"model"}
    assert reads("{from: a.b, then: c}") == {"a"}  # after from the scope is the value read
    assert reads("{value: 1}") == set() and reads("3") == set()


def test_an_each_rule_counts_only_what_acts_on_the_list() -> None:
    assert reads("{each: input, when: go, from: type, emit: {x: y}, then: z}") == {"input", "go"}


def test_named_maps_are_followed_once() -> None:
    maps = {"a": "{from: x, apply: b}", "b": "{apply: a}", "c": "{apply: c}"}
    assert reads("{apply: b}", maps=maps) == {"x"}
    assert reads("{apply: c}", maps=maps) == set()
    assert rule_reads({"apply": "unknown"}, {}) == set()


def test_document_reads_unions_the_field_rules() -> None:
    assert document_reads({"model": "model", "n": {"from": "x", "when": "y"}}, {}) == {"model", "x", "y"}
    assert document_reads({}, {}) == set()


def test_gaps_are_the_schema_properties_nobody_accounts_for() -> None:
    properties = schema_properties("openai/responses.request")
    assert "model" in properties and "input" in properties
    assert gaps(("a", "b", "c"), {"b"}) == ["a", "c"]
