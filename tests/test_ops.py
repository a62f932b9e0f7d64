"""engine/ops/__init__.py: the vocabulary, one op per key, and the schema the ops declare.

The per-op behaviour is tested next to each module (tests/test_ops_sources.py, _structure,
_modifiers, _checks, _runtime); the compiler that dispatches to them in tests/test_codegen.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from mapper.engine.ops import (CHECKS, EACH_LIST_KEYS, GUARDS, MODIFIERS, OPS, SOURCES, Check, Guard,
                               Modifier, Source, rule_schema)
from mapper.engine.schema import MAPPING_SCHEMA

README = Path(__file__).parent.parent / "README.md"


def test_the_mapping_schema_s_rule_object_is_what_the_ops_declare() -> None:
    schema = orjson.loads(MAPPING_SCHEMA.read_bytes())
    assert schema["$defs"]["ruleObject"] == rule_schema()


def test_every_key_belongs_to_one_op_and_each_op_owns_its_main_key() -> None:
    tables = {"sources": SOURCES, "modifiers": MODIFIERS, "guards": GUARDS, "checks": CHECKS}
    roles = {"sources": Source, "modifiers": Modifier, "guards": Guard, "checks": Check}
    owners: dict[str, str] = {}
    for role, table in tables.items():
        for key, op in table.items():
            assert isinstance(op, roles[role]) and op.key == key and key in op.schema
            for owned in op.schema:
                assert owned not in owners, f"{owned} is owned twice"
                owners[owned] = key
                assert OPS[owned] is op
    assert set(OPS) == set(owners)
    assert {key: OPS[key].key for key in ("cases", "otherwise", "args", "flatten")} == {
        "cases": "switch", "otherwise": "switch", "args": "fn", "flatten": "each"}


def test_the_keys_that_act_on_an_each_rule_s_list() -> None:
    assert set(EACH_LIST_KEYS) == {"each", "flatten", "when", "unless", "default", "required", "then",
                                   "omit_empty"}


def test_a_dependent_key_requires_its_op_s_main_key() -> None:
    for key, needs in rule_schema()["dependentRequired"].items():
        assert needs == [OPS[key].key] and key != OPS[key].key


def test_the_readme_s_rule_table_names_every_op() -> None:
    text = README.read_text()
    table = text[text.index("| key | kind | meaning |"):text.index("Order inside one rule")]
    named = set(re.findall(r"`([a-z_]+):", table))
    assert set(OPS) <= named | {"cases", "otherwise", "args", "flatten", "unless"}
